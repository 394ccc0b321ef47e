package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
)

// stores is every JetStream store babelcast keeps, in the order they are
// opened. Each gets the Bus's replicas; a store that exists with other
// settings (fewer replicas, from an older version or another --replicas)
// is updated in place. A new store is an entry here and a field on Bus:
//
//	kv(func(b *Bus) *jetstream.KeyValue { return &b.Booths }, jetstream.KeyValueConfig{Bucket: …}),
//	liveKV(…) for a bucket of entries that expire (see liveKV),
//	stream(func(b *Bus) *jetstream.Stream { return &b.Transcript }, jetstream.StreamConfig{Name: …}),
//	objects(func(b *Bus) *jetstream.ObjectStore { return &b.Recordings }, jetstream.ObjectStoreConfig{Bucket: …}),
var stores = []store{
	kv(func(b *Bus) *jetstream.KeyValue { return &b.Rooms }, jetstream.KeyValueConfig{
		Bucket: subject.BucketRooms, Description: "babelcast rooms", History: 5,
		MaxValueSize: room.MaxStored,
	}),
	kv(func(b *Bus) *jetstream.KeyValue { return &b.Questions }, question.BucketConfig()),
	liveKV(func(b *Bus) *jetstream.KeyValue { return &b.State }, jetstream.KeyValueConfig{
		Bucket: livestate.Bucket, Description: "babelcast live state",
		TTL: livestate.TTL, LimitMarkerTTL: livestate.TTL,
	}),
	liveKV(func(b *Bus) *jetstream.KeyValue { return &b.Leases }, jetstream.KeyValueConfig{
		Bucket: subject.BucketLeases, Description: "babelcast channel leases",
		TTL: subject.LeaseTTL, LimitMarkerTTL: subject.LeaseTTL,
	}),
	stream(func(b *Bus) *jetstream.Stream { return &b.Transcript }, record.StreamConfig()),
	objects(func(b *Bus) *jetstream.ObjectStore { return &b.Recordings }, record.BucketConfig()),
}

// store is one JetStream store: its name, and how to create or update it
// with a number of replicas and keep it on the Bus.
type store struct {
	name string
	open func(ctx context.Context, b *Bus, replicas int) error
}

// storeOf is a store named name whose create makes or updates it (from
// its own copy of cfg) with a number of replicas; the result is kept in
// *field(b).
func storeOf[C, S any](name string, field func(*Bus) *S, cfg C, create func(context.Context, *Bus, C, int) (S, error)) store {
	return store{name: name, open: func(ctx context.Context, b *Bus, replicas int) error {
		s, err := create(ctx, b, cfg, replicas)
		if err == nil {
			*field(b) = s
		}
		return err
	}}
}

// kv is a key-value bucket kept in *field(b).
func kv(field func(*Bus) *jetstream.KeyValue, cfg jetstream.KeyValueConfig) store {
	return storeOf("KV bucket "+cfg.Bucket, field, cfg, createKV)
}

func createKV(ctx context.Context, b *Bus, c jetstream.KeyValueConfig, replicas int) (jetstream.KeyValue, error) {
	c.Replicas = replicas
	s, err := b.JS.CreateOrUpdateKeyValue(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := awaitWrites(ctx, s); err != nil {
		return nil, err
	}
	return newBucket(s, b.Conn), nil
}

// readyProbeKey is a key no one writes: awaitWrites asks the bucket to
// update it at a revision it can never have.
const readyProbeKey = "babelcast-ready-probe"

// awaitWrites reports whether the bucket takes writes from this
// connection. A bucket just made on a cluster is answered by its stream's
// leader only once the stream's interest has reached the server we are
// connected to; until then a write fails with "no response from stream".
// The probe is an update at an impossible revision: the stream answers it
// with a revision mismatch and stores nothing.
func awaitWrites(ctx context.Context, kv jetstream.KeyValue) error {
	_, err := kv.Update(ctx, readyProbeKey, nil, math.MaxInt64)
	if err == nil || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil
	}
	return err
}

// liveKV is a bucket of entries that expire unless rewritten (live state,
// leases), kept in *field(b). With one replica it lives in memory: a
// restart of the server is a restart of everything, and forgets it all.
// Replicated, it lives on disk: a server that restarts rejoins its
// replicas' consensus with its log, where a memory replica comes back
// empty, and the bucket has no quorum again until a majority of replicas
// that kept it is back (with two servers of three restarting, never).
// Storage cannot change in place: an existing bucket on the other storage
// is deleted and made anew; its entries are rewritten by their writers
// within their refresh period, and a lease lost meanwhile is retaken.
func liveKV(field func(*Bus) *jetstream.KeyValue, cfg jetstream.KeyValueConfig) store {
	return storeOf("KV bucket "+cfg.Bucket, field, cfg, func(ctx context.Context, b *Bus, c jetstream.KeyValueConfig, replicas int) (jetstream.KeyValue, error) {
		c.Storage = jetstream.FileStorage
		if replicas == 1 {
			c.Storage = jetstream.MemoryStorage
		}
		if err := b.dropOnOtherStorage(ctx, c.Bucket, c.Storage); err != nil {
			return nil, err
		}
		return createKV(ctx, b, c, replicas)
	})
}

// dropOnOtherStorage deletes bucket if it exists on storage other than
// want.
func (b *Bus) dropOnOtherStorage(ctx context.Context, bucket string, want jetstream.StorageType) error {
	old, err := b.JS.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := old.Status(ctx)
	if err != nil {
		return err
	}
	kvst, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || kvst.StreamInfo().Config.Storage == want {
		return nil
	}
	b.log.Warn("making the bucket anew on other storage; its entries are rewritten by their writers",
		"bucket", bucket, "storage", want.String())
	if err := b.JS.DeleteKeyValue(ctx, bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return err
	}
	return nil
}

// stream is a stream kept in *field(b); with no MaxAge, it keeps its
// messages for the Bus's retention (Options.Retention).
func stream(field func(*Bus) *jetstream.Stream, cfg jetstream.StreamConfig) store {
	return storeOf("stream "+cfg.Name, field, cfg, func(ctx context.Context, b *Bus, c jetstream.StreamConfig, replicas int) (jetstream.Stream, error) {
		c.Replicas = replicas
		c.MaxAge = cmp.Or(c.MaxAge, b.retention)
		return b.JS.CreateOrUpdateStream(ctx, c)
	})
}

// objects is an object store kept in *field(b); with no TTL, it keeps its
// objects for the Bus's retention.
func objects(field func(*Bus) *jetstream.ObjectStore, cfg jetstream.ObjectStoreConfig) store {
	return storeOf("object store "+cfg.Bucket, field, cfg, func(ctx context.Context, b *Bus, c jetstream.ObjectStoreConfig, replicas int) (jetstream.ObjectStore, error) {
		c.Replicas = replicas
		c.TTL = cmp.Or(c.TTL, b.retention)
		return b.JS.CreateOrUpdateObjectStore(ctx, c)
	})
}

// openAttempt bounds one attempt at opening a store: a cluster electing
// leaders answers nothing, and the next attempt may find the leader.
const openAttempt = 5 * time.Second

// openStores opens every store, waiting while JetStream cannot answer.
func (b *Bus) openStores(ctx context.Context) error {
	return b.openList(ctx, stores)
}

func (b *Bus) openList(ctx context.Context, list []store) error {
	for _, s := range list {
		_, err := wait(ctx, b.log, "JetStream: "+s.name+fmt.Sprintf(" (replicas %d)", b.Replicas), func() (struct{}, error) {
			actx, cancel := context.WithTimeout(ctx, openAttempt)
			defer cancel()
			err := s.open(actx, b, b.Replicas)
			if err != nil && ctx.Err() == nil && transient(err) {
				return struct{}{}, retryable{err}
			}
			return struct{}{}, err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, explain(err))
		}
	}
	return nil
}

// JetStream error codes that waiting may mend.
const (
	codeInsufficientResources = 10023 // fewer servers than replicas: more may join
	codeNotAvailable          = 10008 // the meta leader is being elected
)

// transient reports whether a failure to open a store may pass by itself:
// no answer in time (a leader being elected), JetStream temporarily
// unavailable, or not enough servers yet for the replicas (a cluster still
// forming). Anything else JetStream answers is a real refusal.
func transient(err error) bool {
	if errors.Is(err, nats.ErrConnectionClosed) {
		return false
	}
	var api *jetstream.APIError
	if errors.As(err, &api) && api.ErrorCode == codeInsufficientResources {
		return true
	}
	return Unavailable(err)
}

// explain adds what an operator can do about a refusal.
func explain(err error) error {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount:
			return fmt.Errorf("%w: enable JetStream on the NATS servers (-js, or jetstream {} in their configuration) for this account", err)
		case 10074: // replicas > 1 not supported in non-clustered mode
			return fmt.Errorf("%w: this NATS server is not part of a cluster; use --replicas 1 or join a cluster", err)
		}
	}
	return err
}
