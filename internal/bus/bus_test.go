package bus

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/test/harness/logs"
	"github.com/babelcast/babelcast/test/natscluster"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func open(t *testing.T, o Options) *Bus {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// The embedded server opens no port: no other process on the machine can
// connect to it and read the rooms (with their speaker keys and
// passcodes). Only this process reaches it.
func TestEmbeddedServerHasNoListener(t *testing.T) {
	t.Parallel()
	b := open(t, Options{DataDir: t.TempDir()})
	if u := b.ClientURL(); u != "" {
		t.Fatalf("the embedded server listens at %s", u)
	}
	if addr := b.server.s.Addr(); addr != nil {
		t.Fatalf("the embedded server listens at %v", addr)
	}
	if _, err := b.Rooms.Put(context.Background(), "r", []byte("{}")); err != nil {
		t.Fatalf("the in-process connection does not work: %v", err)
	}
	if b.Replicas != 1 {
		t.Errorf("embedded replicas %d, want 1", b.Replicas)
	}
	other, err := b.Connect()
	if err != nil {
		t.Fatalf("another in-process connection: %v", err)
	}
	other.Close()
}

// With a listener, a client must hold the key kept in the data directory.
func TestEmbeddedListenerWantsItsKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := open(t, Options{DataDir: dir, Listen: "127.0.0.1:0"})
	if !strings.HasPrefix(b.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("listener URL %q", b.ClientURL())
	}
	if _, err := b.Rooms.Put(context.Background(), "r", []byte(`{"speaker_key":"spk_secret"}`)); err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(b.ClientURL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("a client without the key was let in")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("a client without the key: %v, want an authorization violation", err)
	}
	// Another process joins with the key file, as --nats-nkey.
	joined := open(t, Options{URL: b.ClientURL(), NKey: b.ListenerKeyFile()})
	e, err := joined.Rooms.Get(context.Background(), "r")
	if err != nil || !strings.Contains(string(e.Value()), "spk_secret") {
		t.Fatalf("the joined process reads the rooms: %v", err)
	}
	// The key is the same on the next start: joined processes keep working.
	key := b.ListenerKeyFile()
	b.Close()
	again := open(t, Options{DataDir: dir, Listen: "127.0.0.1:0"})
	if again.ListenerKeyFile() != key {
		t.Errorf("key file %s, then %s", key, again.ListenerKeyFile())
	}
}

// Credentials the server refuses end the wait at once with a clear error:
// only an absent or electing cluster is waited for.
func TestOpenFailsAtOnceOnRefusedCredentials(t *testing.T) {
	t.Parallel()
	b := open(t, Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	other := open(t, Options{DataDir: t.TempDir(), Listen: "127.0.0.1:0"}) // another key
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Open(ctx, Options{URL: b.ClientURL(), NKey: other.ListenerKeyFile(), Logger: quiet()})
	if err == nil || !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("wrong key: %v, want an authorization violation", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a refused key took %v to report", took)
	}
	for _, o := range []Options{
		{URL: b.ClientURL(), NKey: "/nonexistent/key.nk"},
		{URL: b.ClientURL(), TLSCert: other.ListenerKeyFile()}, // a cert without its key
		{DataDir: t.TempDir(), NKey: other.ListenerKeyFile()},  // credentials for the embedded server
		{URL: b.ClientURL(), Listen: "127.0.0.1:0"},            // a listener when joining
		{URL: b.ClientURL(), NKey: b.ListenerKeyFile(), Replicas: -1},
	} {
		o.Logger = quiet()
		if b, err := Open(ctx, o); err == nil {
			b.Close()
			t.Errorf("%+v accepted", o)
		}
	}
}

// On a cluster of three, every store has three replicas; stores made
// with one (by an earlier version) are upgraded in place, their data kept.
func TestReplicasOnACluster(t *testing.T) {
	t.Parallel()
	c := natscluster.Start(t, natscluster.Options{})
	first := open(t, Options{URL: c.URLs(), Replicas: 1})
	if _, err := first.Rooms.Put(context.Background(), "keynote", []byte(`{"id":"keynote"}`)); err != nil {
		t.Fatal(err)
	}
	sink := &logs.Sink{}
	b := open(t, Options{URL: c.URLs(), Logger: slog.New(slog.NewTextHandler(sink, nil))})
	if b.Replicas != 3 {
		t.Fatalf("replicas %d on a cluster of 3, want 3", b.Replicas)
	}
	ctx := context.Background()
	for _, name := range []string{subject.BucketRooms, livestate.Bucket, subject.BucketLeases} {
		kv, err := b.JS.KeyValue(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config
		if cfg.Replicas != 3 {
			t.Errorf("%s: %d replicas", name, cfg.Replicas)
		}
		// Replicated buckets live on disk: a memory replica comes back from
		// a restart empty, and two of three restarting lose the quorum.
		if cfg.Storage != jetstream.FileStorage {
			t.Errorf("%s: %v storage", name, cfg.Storage)
		}
	}
	if e, err := b.Rooms.Get(ctx, "keynote"); err != nil || string(e.Value()) != `{"id":"keynote"}` {
		t.Errorf("the room kept through the upgrade: %v", err)
	}
	// A stream and an object store, added the way later stores will be.
	var s jetstream.Stream
	var o jetstream.ObjectStore
	extra := []store{
		stream(func(*Bus) *jetstream.Stream { return &s }, jetstream.StreamConfig{Name: "babelcast_test", Subjects: []string{"babelcast_test.>"}}),
		objects(func(*Bus) *jetstream.ObjectStore { return &o }, jetstream.ObjectStoreConfig{Bucket: "babelcast_test_objects"}),
	}
	if err := b.openList(ctx, extra); err != nil {
		t.Fatal(err)
	}
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("stream: %d replicas", r)
	}
	if st, err := o.Status(ctx); err != nil || st.Replicas() != 3 {
		t.Errorf("object store: %v replicas, %v", st, err)
	}
}

// Processes started together with a fresh cluster wait for it (the log
// says what for) instead of exiting.
func TestOpenWaitsForAClusterStartingWithIt(t *testing.T) {
	t.Parallel()
	c := natscluster.Start(t, natscluster.Options{NoWait: true})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	sinks := make([]*logs.Sink, 4)
	errs := make([]error, len(sinks))
	for i := range sinks {
		sinks[i] = &logs.Sink{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := Open(ctx, Options{URL: c.URLs(), Logger: slog.New(slog.NewTextHandler(sinks[i], nil))})
			errs[i] = err
			if err == nil {
				if b.Replicas != 3 {
					errs[i] = errors.New("replicas " + string(rune('0'+b.Replicas)))
				}
				b.Close()
			}
		}()
	}
	wg.Wait()
	waited := false
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v\n%s", i, err, sinks[i])
		}
		waited = waited || strings.Contains(sinks[i].String(), "waiting for")
	}
	if !waited {
		t.Log("no process had to wait (the cluster was quicker than they were)")
	}
}

// The cluster configuration the README shows: babelcast in an account of
// its own with JetStream, its user an NKey (made with babelcast nkey).
// Joined with --nats-nkey, on three servers, every store has three
// replicas; without the key, the cluster refuses at once.
func TestReadmeClusterConfig(t *testing.T) {
	t.Parallel()
	pub, seedFile := userNKey(t)
	c := natscluster.Start(t, natscluster.Options{Auth: `
accounts {
  BABELCAST {
    jetstream: enabled
    users: [ { nkey: "` + pub + `" } ]
  }
}
`})
	b := open(t, Options{URL: c.URLs(), NKey: seedFile})
	if b.Replicas != 3 {
		t.Errorf("replicas %d", b.Replicas)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if b, err := Open(ctx, Options{URL: c.URLs(), Logger: quiet()}); err == nil {
		b.Close()
		t.Error("joined without the key")
	}
}
