package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// ListenerKeyName is the file, in the data directory, holding the NKey
// seed that clients of the embedded server's listener authenticate with.
const ListenerKeyName = "nats-client.nk"

// embedded is the in-process NATS server.
type embedded struct {
	s        *server.Server
	seedFile string // the listener's client key; empty without a listener
	tls      bool   // the listener speaks TLS only
}

// listener is the embedded server's TCP listener: its address, and the
// certificate and key of its TLS (none: plain TCP).
type listener struct {
	addr, cert, key string
}

// startEmbedded starts the server with JetStream stored under dataDir.
// Without a listener address it opens no port at all: only this process
// reaches it, through an in-process connection. With one it accepts TCP
// clients that prove they hold the NKey kept in dataDir (made on first
// use), so no other process on the machine reads the rooms' keys by
// connecting; with a certificate, over TLS only.
func startEmbedded(dataDir string, l listener, log *slog.Logger) (*embedded, error) {
	if dataDir == "" {
		dataDir = "data"
	}
	opts := &server.Options{
		ServerName: "babelcast-embedded",
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "jetstream"),
		NoSigs:     true,
		// Audio frames are small, but leave room for large caption bursts.
		MaxPayload: 4 << 20,
		DontListen: true,
	}
	e := &embedded{}
	switch {
	case l.addr == "" && (l.cert != "" || l.key != ""):
		return nil, errors.New("--nats-listen-tls-cert and --nats-listen-tls-key are for the listener: give --nats-listen too")
	case (l.cert == "") != (l.key == ""):
		return nil, errors.New("--nats-listen-tls-cert and --nats-listen-tls-key go together")
	}
	if l.addr != "" {
		host, port, err := splitListen(l.addr)
		if err != nil {
			return nil, err
		}
		seedFile, pub, err := listenerKey(dataDir)
		if err != nil {
			return nil, err
		}
		opts.DontListen = false
		opts.Host, opts.Port = host, port
		opts.Nkeys = []*server.NkeyUser{{Nkey: pub}}
		e.seedFile = seedFile
	}
	if l.cert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: l.cert, KeyFile: l.key})
		if err != nil {
			return nil, fmt.Errorf("NATS listener TLS: %w", err)
		}
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, tc, 2
		e.tls = true
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded NATS: not ready after 10s")
	}
	e.s = s
	switch {
	case l.addr == "":
		log.Info("embedded NATS server started (in-process only, no listener)", "store", opts.StoreDir)
	default:
		log.Info("embedded NATS server started", "store", opts.StoreDir, "listen", e.clientURL(), "tls", e.tls, "client_key", e.seedFile)
		if h := net.ParseIP(opts.Host); !e.tls && (h == nil || !h.IsLoopback()) {
			log.Warn("the embedded NATS listener is reachable from the network without TLS: rooms (with their keys) travel in clear; give it --nats-listen-tls-cert and --nats-listen-tls-key")
		}
	}
	return e, nil
}

// splitListen reads --nats-listen: host:port, or :port (all interfaces).
func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("NATS listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("NATS listen address %q: bad port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// listenerKey returns the listener's client key file and its public key,
// making the key on first use (readable by this user only).
func listenerKey(dataDir string) (file, pub string, err error) {
	file = filepath.Join(dataDir, ListenerKeyName)
	seed, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		kp, err := nkeys.CreateUser()
		if err != nil {
			return "", "", err
		}
		if seed, err = kp.Seed(); err != nil {
			return "", "", err
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return "", "", fmt.Errorf("data directory: %w", err)
		}
		if err := os.WriteFile(file, append(seed, '\n'), 0o600); err != nil {
			return "", "", fmt.Errorf("keep the NATS client key: %w", err)
		}
	case err != nil:
		return "", "", fmt.Errorf("read the NATS client key: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(seed)
	if err != nil {
		return "", "", fmt.Errorf("NATS client key %s: %w", file, err)
	}
	defer kp.Wipe()
	if pub, err = kp.PublicKey(); err != nil {
		return "", "", fmt.Errorf("NATS client key %s: %w", file, err)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", "", fmt.Errorf("NATS client key %s: not a user key", file)
	}
	return file, pub, nil
}

// clientOptions connect this process to the server in-process, with the
// listener's key when the server asks for one.
func (e *embedded) clientOptions() []nats.Option {
	opts := []nats.Option{nats.InProcessServer(e.s)}
	if e.seedFile != "" {
		// The key was just read and checked; it cannot fail now but for
		// the file vanishing, which the connection then reports.
		if o, err := nats.NkeyOptionFromSeed(e.seedFile); err == nil {
			opts = append(opts, o)
		}
	}
	return opts
}

// clientURL is the listener's URL; empty without a listener.
func (e *embedded) clientURL() string {
	if e.seedFile == "" {
		return ""
	}
	addr := e.s.Addr()
	if addr == nil {
		return ""
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return ""
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "nats://"
	if e.tls {
		scheme = "tls://"
	}
	return scheme + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

func (e *embedded) shutdown() {
	e.s.Shutdown()
	e.s.WaitForShutdown()
}
