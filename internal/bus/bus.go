// Package bus connects a babelcast process to NATS: it starts the embedded
// server when no external one is named, and opens the JetStream KV buckets
// that the roles share (see packages subject and livestate).
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/subject"
)

// Bus is a NATS connection with the shared KV buckets opened.
type Bus struct {
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Rooms  jetstream.KeyValue
	State  jetstream.KeyValue
	Leases jetstream.KeyValue
	// Questions holds the audience's questions (package question).
	Questions jetstream.KeyValue

	server *server.Server // nil when connected to an external NATS
	closed chan struct{}  // closed by the connection's ClosedHandler
}

// Options says how to reach NATS.
type Options struct {
	// URL of an external NATS server or cluster; empty starts an embedded
	// server with JetStream stored under DataDir.
	URL string
	// DataDir holds the embedded server's JetStream store.
	DataDir string
	// Name identifies this process's connection in NATS monitoring.
	Name string
	// Logger receives connection events.
	Logger *slog.Logger
}

// Open connects (starting the embedded server if needed) and makes sure the
// shared buckets exist.
func Open(ctx context.Context, o Options) (*Bus, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	b := &Bus{closed: make(chan struct{})}
	url := o.URL
	if url == "" {
		s, err := startEmbedded(o.DataDir)
		if err != nil {
			return nil, err
		}
		b.server = s
		url = s.ClientURL()
		o.Logger.Info("embedded NATS server started", "store", filepath.Join(o.DataDir, "jetstream"))
	}
	log := o.Logger
	nc, err := nats.Connect(url,
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ClosedHandler(func(*nats.Conn) { close(b.closed) }),
	)
	if err != nil {
		b.shutdownServer()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	b.Conn = nc
	if err := b.openBuckets(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func startEmbedded(dataDir string) (*server.Server, error) {
	if dataDir == "" {
		dataDir = "data"
	}
	opts := &server.Options{
		ServerName: "babelcast-embedded",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   filepath.Join(dataDir, "jetstream"),
		NoSigs:     true,
		// Audio frames are small, but leave room for large caption bursts.
		MaxPayload: 4 << 20,
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
	return s, nil
}

func (b *Bus) openBuckets(ctx context.Context) error {
	js, err := jetstream.New(b.Conn)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	b.JS = js
	open := func(cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
		kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("KV bucket %s: %w", cfg.Bucket, err)
		}
		return kv, nil
	}
	if b.Rooms, err = open(jetstream.KeyValueConfig{
		Bucket: subject.BucketRooms, Description: "babelcast rooms", History: 5, MaxValueSize: 1 << 20,
	}); err != nil {
		return err
	}
	if b.State, err = open(jetstream.KeyValueConfig{
		Bucket: livestate.Bucket, Description: "babelcast live state",
		TTL: livestate.TTL, Storage: jetstream.MemoryStorage, LimitMarkerTTL: livestate.TTL,
	}); err != nil {
		return err
	}
	if b.Questions, err = open(question.BucketConfig()); err != nil {
		return err
	}
	if b.Leases, err = open(jetstream.KeyValueConfig{
		Bucket: subject.BucketLeases, Description: "babelcast channel leases",
		TTL: subject.LeaseTTL, Storage: jetstream.MemoryStorage, LimitMarkerTTL: subject.LeaseTTL,
	}); err != nil {
		return err
	}
	return nil
}

// Embedded reports whether this process runs the NATS server itself.
func (b *Bus) Embedded() bool { return b.server != nil }

// ClientURL is the URL other processes can use to join this bus.
func (b *Bus) ClientURL() string { return b.Conn.ConnectedUrlRedacted() }

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
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
}
