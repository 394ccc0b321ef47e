// Package app assembles a babelcast process: it opens the NATS bus, builds the
// roles this process runs (api, ingest, translate, fanout), serves their HTTP
// routes on one address and stops them in order. cmd/babelcast parses flags
// into a Config; end-to-end tests call Start directly.
package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Roles a process can run.
const (
	RoleAPI       = "api"
	RoleIngest    = "ingest"
	RoleTranslate = "translate"
	RoleFanout    = "fanout"
)

// AllRoles is what `serve` runs by default.
var AllRoles = []string{RoleAPI, RoleIngest, RoleTranslate, RoleFanout}

// Config is everything a process needs to start.
type Config struct {
	Addr    string // HTTP listen address, e.g. ":8080"
	DataDir string // embedded NATS store and generated admin token
	NATSURL string // external NATS; empty starts an embedded server
	// NATSListen opens the embedded server to other processes on this
	// address, for clients holding the NKey it keeps in DataDir; empty:
	// reachable from inside this process only.
	NATSListen string
	// NATSListenTLSCert and NATSListenTLSKey (PEM files) make that
	// listener TLS only.
	NATSListenTLSCert, NATSListenTLSKey string
	// Replicas of every JetStream store; 0: 1 embedded, 3 on a cluster.
	Replicas int
	// Credentials and TLS for an external NATS (file paths; empty unused).
	NATSCreds, NATSNKey, NATSTLSCA, NATSTLSCert, NATSTLSKey string
	Roles                                                   []string // subset of AllRoles
	Node                                                    string   // this process's name in the cluster; empty = hostname + random suffix

	AdminToken string // empty: read from DataDir, or generated and printed once
	PublicURL  string // base URL for share links; empty = from each request
	// TrustedProxies are the load balancers whose X-Forwarded-For names
	// the client (for the admin token's brute-force limit and the logs).
	TrustedProxies []netip.Prefix

	Engine         string // "openai", "local" or empty (openai when OpenAIKey is set)
	OpenAIKey      string
	RealtimeURL    string
	RealtimeModel  string
	TranslateModel string
	MaxSessions    int
	Linger         time.Duration
	// Retention is how long transcripts and recordings are kept (0: 30
	// days); RecordMaxBytes bounds the recordings' audio (0: no bound).
	Retention      time.Duration
	RecordMaxBytes uint64
	// MaxListeners caps this node's listener connections, and
	// MaxListenersPerAddress those from one client address (0: fanout's
	// defaults; negative: no cap).
	MaxListeners, MaxListenersPerAddress int
	// IdleTimeout closes a keep-alive HTTP connection idle this long, and
	// ReadHeaderTimeout one whose request headers take this long (0:
	// DefaultIdleTimeout, DefaultReadHeaderTimeout).
	IdleTimeout, ReadHeaderTimeout time.Duration
	// RotateBefore is how long before an OpenAI connection expires the
	// engine opens a fresh one and moves over at a pause (0: the engine's
	// default, 3 minutes). A knob for tests and operators whose provider
	// ends sessions sooner than OpenAI's 60 minutes.
	RotateBefore time.Duration

	Log *slog.Logger
	// Announce receives one-time messages meant for the operator's eyes
	// only (the generated admin token); nil means stdout.
	Announce func(msg string)
}

// ParseRoles turns "api,ingest" into a checked role list.
func ParseRoles(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" || s == "all" {
		return slices.Clone(AllRoles), nil
	}
	var roles []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if !slices.Contains(AllRoles, r) {
			return nil, fmt.Errorf("unknown role %q; roles are %s", r, strings.Join(AllRoles, ", "))
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles, nil
}

func (c *Config) has(role string) bool { return slices.Contains(c.Roles, role) }

// engineName resolves the --engine default.
func (c *Config) engineName() (string, error) {
	switch c.Engine {
	case "":
		if c.OpenAIKey != "" {
			return "openai", nil
		}
		return "local", nil
	case "openai":
		if c.OpenAIKey == "" {
			return "", errors.New("--engine openai needs OPENAI_API_KEY")
		}
		return "openai", nil
	case "local":
		return "local", nil
	default:
		return "", fmt.Errorf("unknown engine %q; engines are openai, local", c.Engine)
	}
}

func defaultNode() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	// Node ids appear in KV keys: keep them to safe characters.
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, host)
	return host + "-" + hex.EncodeToString(b)
}

const adminTokenFile = "admin-token"

// adminToken returns the configured token, else the one kept in the data
// directory, else a new one written there; fresh reports the last case, so
// the caller shows it once.
func adminToken(configured, dataDir string) (token string, fresh bool, err error) {
	if configured != "" {
		return configured, false, nil
	}
	path := filepath.Join(dataDir, adminTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read admin token: %w", err)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", false, err
	}
	token = "adm_" + hex.EncodeToString(b)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("data directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("keep admin token: %w", err)
	}
	return token, true, nil
}
