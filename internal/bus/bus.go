// Package bus connects a babelcast process to NATS: it starts the embedded
// server when no external one is named, joins an external cluster with the
// credentials and TLS it is given, and opens the JetStream stores the roles
// share (stores.go: every KV bucket, stream and object store, with their
// replicas, in one table).
//
// Opening waits for NATS instead of failing: a server that is not up yet,
// or a cluster still electing the leaders of its streams, is waited for
// (and the log says what for), so processes started together with a fresh
// cluster come up with it. What waiting cannot mend (wrong credentials, no
// JetStream, more replicas than servers can ever hold) fails at once.
package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/record"
)

// Bus is a NATS connection with the shared stores opened.
type Bus struct {
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Rooms  jetstream.KeyValue
	State  jetstream.KeyValue
	Leases jetstream.KeyValue
	// Questions holds the audience's questions (package question).
	Questions jetstream.KeyValue
	// Transcript and Recordings keep the record of events (package
	// record): every channel's final captions, and recorded audio.
	Transcript jetstream.Stream
	Recordings jetstream.ObjectStore

	// Replicas is how many copies of each store the cluster keeps.
	Replicas int

	retention time.Duration // of streams and object stores
	server    *embedded     // nil when connected to an external NATS
	closed    chan struct{} // closed by the connection's ClosedHandler
	log       *slog.Logger
}

// Options says how to reach NATS.
type Options struct {
	// URL of an external NATS server or cluster (comma-separated URLs);
	// empty starts an embedded server with JetStream stored under DataDir.
	URL string
	// DataDir holds the embedded server's JetStream store, and the key of
	// its client listener (Listen).
	DataDir string
	// Listen, with the embedded server, opens a TCP listener for other
	// processes on this address (host:port; port 0 picks one). Clients
	// must then authenticate with the NKey kept in DataDir (see
	// ListenerKeyFile). Empty: the embedded server has no listener at all
	// and is reachable only from inside this process.
	Listen string
	// ListenTLSCert and ListenTLSKey (PEM files), with Listen, make the
	// listener speak TLS only: its clients verify this certificate (as
	// --nats-tls-ca) and traffic across machines is encrypted.
	ListenTLSCert, ListenTLSKey string
	// Replicas of every store; 0 picks: 1 on an embedded or single
	// server, 3 on a cluster of three servers or more (as many as there
	// are on a smaller cluster).
	Replicas int
	// Credentials for an external NATS: a .creds file (user JWT and seed),
	// an NKey seed file, and TLS files (a CA to trust, a client
	// certificate and its key). Empty ones are not used.
	Creds   string
	NKey    string
	TLSCA   string
	TLSCert string
	TLSKey  string
	// Retention is how long streams and object stores keep what they
	// hold (the record of events); 0: record.DefaultRetention.
	Retention time.Duration
	// Name identifies this process's connection in NATS monitoring.
	Name string
	// Logger receives connection events and what opening waits for.
	Logger *slog.Logger
}

// Open connects (starting the embedded server if needed) and opens the
// shared stores. It waits while NATS is unreachable or JetStream has no
// leader for a store, until ctx ends.
func Open(ctx context.Context, o Options) (*Bus, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Replicas < 0 || o.Replicas > 5 {
		// JetStream's own limit is 5: more is refused by every server.
		return nil, fmt.Errorf("replicas must be from 1 to 5 (0: the default), not %d", o.Replicas)
	}
	if o.Retention < 0 {
		return nil, fmt.Errorf("retention must be positive (0: the default), not %s", o.Retention)
	}
	if o.Retention == 0 {
		o.Retention = record.DefaultRetention
	}
	b := &Bus{closed: make(chan struct{}), log: o.Logger, retention: o.Retention}
	var opts []nats.Option
	url := o.URL
	if url == "" {
		if o.Creds != "" || o.NKey != "" || o.TLSCA != "" || o.TLSCert != "" || o.TLSKey != "" {
			return nil, fmt.Errorf("NATS credentials and TLS files are for an external NATS (--nats); the embedded server makes its own")
		}
		e, err := startEmbedded(o.DataDir, listener{o.Listen, o.ListenTLSCert, o.ListenTLSKey}, o.Logger)
		if err != nil {
			return nil, err
		}
		b.server = e
		opts = e.clientOptions()
	} else {
		if o.Listen != "" || o.ListenTLSCert != "" || o.ListenTLSKey != "" {
			return nil, fmt.Errorf("a NATS listener (--nats-listen, --nats-listen-tls-*) is for the embedded server; this process joins %s", redactURLs(url))
		}
		var err error
		if opts, err = securityOptions(o); err != nil {
			return nil, err
		}
	}
	nc, err := b.connect(ctx, url, o.Name, opts)
	if err != nil {
		b.shutdownServer()
		return nil, err
	}
	b.Conn = nc
	js, err := jetstream.New(nc)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.JS = js
	b.Replicas = b.replicas(o.Replicas)
	if err := b.openStores(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// replicas resolves Options.Replicas (checked in Open).
func (b *Bus) replicas(configured int) int {
	switch {
	case configured > 0:
		return configured
	case b.server != nil:
		return 1
	}
	// A server in a cluster names the cluster; the servers of a cluster
	// tell clients about each other, so Servers lists all of them.
	if b.Conn.ConnectedClusterName() == "" {
		return 1
	}
	return min(3, len(b.Conn.Servers()))
}

// Embedded reports whether this process runs the NATS server itself.
func (b *Bus) Embedded() bool { return b.server != nil }

// ClientURL is the URL other processes can join this bus by: the embedded
// server's listener (empty when it has none), else the external server
// this process is connected to (without credentials).
func (b *Bus) ClientURL() string {
	if b.server != nil {
		return b.server.clientURL()
	}
	return b.Conn.ConnectedUrlRedacted()
}

// ListenerKeyFile is the NKey seed file that clients of the embedded
// server's listener authenticate with; empty when there is no listener.
func (b *Bus) ListenerKeyFile() string {
	if b.server == nil {
		return ""
	}
	return b.server.seedFile
}

// Close drains the connection and stops the embedded server, if any.
func (b *Bus) Close() {
	if b.Conn != nil {
		// Drain is asynchronous; wait for it so pending publishes go out.
		if err := b.Conn.Drain(); err == nil {
			select {
			case <-b.closed:
			case <-time.After(5 * time.Second):
			}
		}
		b.Conn.Close()
	}
	b.shutdownServer()
}

func (b *Bus) shutdownServer() {
	if b.server != nil {
		b.server.shutdown()
	}
}

// Connect opens another connection to the embedded server, in-process (a
// test's publisher, a benchmark's clients). It fails on an external NATS.
func (b *Bus) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if b.server == nil {
		return nil, fmt.Errorf("bus: Connect is for the embedded server")
	}
	return nats.Connect("", append(b.server.clientOptions(), opts...)...)
}
