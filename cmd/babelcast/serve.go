package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/babelcast/babelcast/fanout"
	"github.com/babelcast/babelcast/internal/app"
)

const serveUsage = `Usage: babelcast serve [flags]

Runs babelcast. With no flags: every role (api, ingest, translate, fanout) in
one process, an embedded NATS server storing its data under ./data, the HTTP
server on :8080, and the offline engine unless OPENAI_API_KEY is set.

Flags (each also BABELCAST_<FLAG>, e.g. BABELCAST_REALTIME_URL, or a key of
the YAML file given with --config; a flag beats the environment, which beats
the file):
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := serveConfig(args, stdout, stderr)
	if err != nil {
		return err
	}
	log := cfg.Log
	a, err := app.Start(ctx, cfg)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("signal received, stopping")
	case <-a.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		return err
	}
	return a.Err()
}

// serveConfig reads serve's flags, environment and YAML file into a Config.
func serveConfig(args []string, stdout, stderr io.Writer) (app.Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		fs.PrintDefaults()
	}
	var (
		addr           = fs.String("addr", ":8080", "HTTP listen address")
		dataDir        = fs.String("data", "./data", "data directory: embedded NATS store and the generated admin token")
		natsURL        = fs.String("nats", "", "join this NATS server or cluster (nats://host:4222,…) instead of embedding one")
		natsListen     = fs.String("nats-listen", "", "open the embedded NATS server to other processes on this address (host:port); they authenticate with the NKey kept in <data>/nats-client.nk (default: no listener, in-process only)")
		natsListenCert = fs.String("nats-listen-tls-cert", "", "certificate (PEM) of the --nats-listen listener: it then speaks TLS only (clients verify it with --nats-tls-ca)")
		natsListenKey  = fs.String("nats-listen-tls-key", "", "key (PEM) of --nats-listen-tls-cert")
		replicas       = fs.Int("replicas", 0, "copies of every JetStream bucket, stream and object store (default: 1 embedded, 3 on a cluster of 3 or more servers)")
		natsCreds      = fs.String("nats-creds", "", "NATS credentials file (user JWT and seed) for --nats")
		natsNKey       = fs.String("nats-nkey", "", "NATS NKey seed file for --nats")
		natsTLSCA      = fs.String("nats-tls-ca", "", "CA certificate (PEM) to verify the NATS servers by; implies TLS")
		natsTLSCert    = fs.String("nats-tls-cert", "", "client certificate (PEM) for NATS mutual TLS; with --nats-tls-key")
		natsTLSKey     = fs.String("nats-tls-key", "", "key (PEM) of --nats-tls-cert")
		roles          = fs.String("roles", "api,ingest,translate,fanout", "roles this process runs, any subset")
		_              = fs.String("config", "", "YAML configuration file (see configs/babelcast.yaml)")
		node           = fs.String("node", "", "this process's name in the cluster (default: hostname and a random suffix)")
		publicURL      = fs.String("public-url", "", "base URL of share links and QR codes, e.g. https://talks.example.org (default: from each request)")
		trustedProxies = fs.String("trusted-proxies", "", "load balancers (addresses or CIDRs, comma-separated) whose X-Forwarded-For names the client")
		engine         = fs.String("engine", "", "translation engine: openai or local (default: openai when OPENAI_API_KEY is set, else local)")
		realtimeURL    = fs.String("realtime-url", "wss://api.openai.com/v1/realtime", "OpenAI Realtime URL (the translation endpoint is this plus /translations); an Azure OpenAI URL works for the realtime kind")
		realtimeModel  = fs.String("realtime-model", "gpt-realtime", "model of instructed interpreter sessions")
		translateModel = fs.String("translate-model", "gpt-realtime-translate", "model of dedicated translation sessions")
		maxSessions    = fs.Int("max-sessions", 0, "cap on concurrent translator sessions in the cluster (0: no cap)")
		retention      = fs.Duration("retention", 720*time.Hour, "how long transcripts and recordings are kept")
		recordMax      = fs.Uint64("record-max-bytes", 0, "bound on the recordings' audio in bytes; when full, the oldest room's audio goes first, transcripts stay (0: no bound)")
		linger         = fs.Duration("linger", 30*time.Second, "how long a session outlives its speaker or its last listener")
		maxListeners   = fs.Int("max-listeners", fanout.DefaultMaxListeners, "listener connections this node takes (WebSocket and streams); one more is refused with 503 (-1: no cap)")
		maxPerAddress  = fs.Int("max-listeners-per-address", fanout.DefaultMaxListenersPerAddress, "listener connections from one client address; one more is refused with 429 (-1: no cap; behind a load balancer, see --trusted-proxies)")
		logLevel       = fs.String("log-level", "info", "debug, info, warn or error")
		logFormat      = fs.String("log-format", "text", "text or json")
	)
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix("BABELCAST"),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(yamlConfig(fs)),
	)
	if err != nil {
		return app.Config{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return app.Config{}, usageError(fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return app.Config{}, err
	}
	for _, name := range unknownEnv(fs, os.Environ()) {
		log.Warn("environment variable ignored: no setting of babelcast serve has that name (babelcast help serve)", "name", name)
	}
	roleList, err := app.ParseRoles(*roles)
	if err != nil {
		return app.Config{}, err
	}
	proxies, err := app.ParseTrustedProxies(*trustedProxies)
	if err != nil {
		return app.Config{}, err
	}
	return app.Config{
		Addr: *addr, DataDir: *dataDir, NATSURL: *natsURL, Roles: roleList, Node: *node,
		NATSListen: *natsListen, NATSListenTLSCert: *natsListenCert, NATSListenTLSKey: *natsListenKey, Replicas: *replicas,
		NATSCreds: *natsCreds, NATSNKey: *natsNKey, NATSTLSCA: *natsTLSCA, NATSTLSCert: *natsTLSCert, NATSTLSKey: *natsTLSKey,
		AdminToken: os.Getenv("BABELCAST_ADMIN_TOKEN"), PublicURL: strings.TrimRight(*publicURL, "/"),
		TrustedProxies: proxies,
		Engine:         *engine, OpenAIKey: os.Getenv("OPENAI_API_KEY"),
		RealtimeURL: *realtimeURL, RealtimeModel: *realtimeModel, TranslateModel: *translateModel,
		MaxSessions: *maxSessions, Linger: *linger, Log: log,
		Retention: *retention, RecordMaxBytes: *recordMax,
		MaxListeners: *maxListeners, MaxListenersPerAddress: *maxPerAddress,
		Announce: func(msg string) { fmt.Fprintln(stdout, msg) },
	}, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
	}
}
