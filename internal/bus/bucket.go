package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bucket is a KV bucket as the Bus hands it out: the jetstream.KeyValue,
// plus reads of many keys that any replica answers (LastFor; packages
// livestate and room use it where they find it).
type bucket struct {
	jetstream.KeyValue
	nc     *nats.Conn
	prefix string // "$KV.<bucket>."
	stream string // "KV_<bucket>"
}

func newBucket(kv jetstream.KeyValue, nc *nats.Conn) *bucket {
	return &bucket{KeyValue: kv, nc: nc, prefix: "$KV." + kv.Bucket() + ".", stream: "KV_" + kv.Bucket()}
}

// errTooMany: more keys match than one direct get returns.
var errTooMany = errors.New("too many keys for one read")

// LastFor returns the entries present under the keys or patterns, read
// with one batched direct get. Any replica of the bucket answers it (the
// buckets allow direct gets), leader or not, so it works while the bucket
// elects a leader, and it creates no consumer, so it works while the
// cluster elects its meta leader. Over 1,024 keys it fails (the caller
// then reads with a watch).
func (b *bucket) LastFor(ctx context.Context, keys []string) ([]jetstream.KeyValueEntry, error) {
	// A request sent to a replica as its server dies is never answered:
	// send it again (to whichever replica answers) rather than wait.
	for {
		actx, cancel := context.WithTimeout(ctx, readAttempt)
		es, err := b.lastFor(actx, keys)
		cancel()
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return es, err
		}
	}
}

// readAttempt bounds one direct get: replicas answer in milliseconds.
const readAttempt = 1500 * time.Millisecond

func (b *bucket) lastFor(ctx context.Context, keys []string) ([]jetstream.KeyValueEntry, error) {
	subjects := make([]string, len(keys))
	for i, k := range keys {
		subjects[i] = b.prefix + k
	}
	req, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{subjects})
	if err != nil {
		return nil, err
	}
	inbox := b.nc.NewRespInbox()
	sub, err := b.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := b.nc.PublishMsg(&nats.Msg{Subject: "$JS.API.DIRECT.GET." + b.stream, Reply: inbox, Data: req}); err != nil {
		return nil, err
	}
	entries := []jetstream.KeyValueEntry{}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("read %s %v: %w", b.stream, keys, err)
		}
		if status := m.Header.Get("Status"); status != "" {
			switch status {
			case "204": // end of the batch
				return entries, nil
			case "404": // nothing matches
				return entries, nil
			case "503":
				return nil, fmt.Errorf("read %s %v: %w", b.stream, keys, nats.ErrNoResponders)
			case "413":
				return nil, fmt.Errorf("read %s %v: %w", b.stream, keys, errTooMany)
			default:
				return nil, fmt.Errorf("read %s %v: %s %s", b.stream, keys, status, m.Header.Get("Description"))
			}
		}
		// The last message of a key may say it was deleted, purged, or
		// removed for its age: the key is absent.
		if m.Header.Get("KV-Operation") != "" || m.Header.Get("Nats-Marker-Reason") != "" {
			continue
		}
		seq, _ := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
		created, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
		entries = append(entries, &entry{
			bucket: b.Bucket(), key: strings.TrimPrefix(m.Header.Get("Nats-Subject"), b.prefix),
			value: m.Data, revision: seq, created: created,
		})
	}
}

// entry is a key's value as LastFor reads it.
type entry struct {
	bucket, key string
	value       []byte
	revision    uint64
	created     time.Time
}

func (e *entry) Bucket() string                  { return e.bucket }
func (e *entry) Key() string                     { return e.key }
func (e *entry) Value() []byte                   { return e.value }
func (e *entry) Revision() uint64                { return e.revision }
func (e *entry) Created() time.Time              { return e.created }
func (e *entry) Delta() uint64                   { return 0 }
func (e *entry) Operation() jetstream.KeyValueOp { return jetstream.KeyValuePut }

// Unavailable reports whether err says NATS or JetStream could not answer
// now (no leader for a stream, no server reachable, a request timed out)
// rather than refused: worth answering 503 and trying again later.
func Unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var api *jetstream.APIError
	if errors.As(err, &api) {
		if api.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabled || api.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabledForAccount {
			return false // also a 503, but no waiting mends it
		}
		return api.Code >= 500 || api.ErrorCode == codeNotAvailable
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrNoHeartbeat) ||
		errors.Is(err, nats.ErrNoServers)
}
