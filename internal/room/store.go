package room

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/text/unicode/norm"

	"github.com/babelcast/babelcast/internal/kvwatch"
)

// Errors of Store.
var (
	ErrNotFound = errors.New("room not found")
	ErrExists   = errors.New("room already exists")
	ErrConflict = errors.New("room was changed concurrently")
	// ErrTooLarge: the room, encoded, is more than its bucket takes.
	ErrTooLarge = errors.New("room too large to store")
)

// MaxStored is the largest encoded room the rooms bucket takes. A room at
// every limit of Normalize fits with room to spare; Store refuses a larger
// one with ErrTooLarge.
const MaxStored = 1 << 20

// Store keeps rooms in a JetStream KV bucket, so every process of the
// cluster sees the same rooms and they survive restarts.
type Store struct {
	kv jetstream.KeyValue
}

// NewStore uses kv (the subject.BucketRooms bucket).
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// getAttempt bounds one read of a room. A read is answered by any replica
// of the bucket in milliseconds; one sent to a server as it dies is never
// answered, and is sent again rather than waited for.
const getAttempt = time.Second

// Get returns a room and its revision. A read that gets no answer is
// tried again until ctx ends.
func (s *Store) Get(ctx context.Context, id string) (*Room, uint64, error) {
	if ValidID(id) != nil {
		return nil, 0, ErrNotFound
	}
	var e jetstream.KeyValueEntry
	var err error
	for {
		actx, cancel := context.WithTimeout(ctx, getAttempt)
		e, err = s.kv.Get(actx, id)
		cancel()
		if ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			break
		}
	}
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get room %s: %w", id, err)
	}
	r, err := decode(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("room %s: %w", id, err)
	}
	return r, e.Revision(), nil
}

// List returns every room, in no particular order. Where the bucket reads
// many keys at once (the buckets of package bus), that is one request any
// replica answers; otherwise the keys are listed and read one by one.
func (s *Store) List(ctx context.Context) ([]*Room, error) {
	if lr, ok := s.kv.(interface {
		LastFor(ctx context.Context, keys []string) ([]jetstream.KeyValueEntry, error)
	}); ok {
		if es, err := lr.LastFor(ctx, []string{">"}); err == nil {
			rooms := make([]*Room, 0, len(es))
			for _, e := range es {
				r, err := decode(e.Value())
				if err != nil {
					return nil, fmt.Errorf("room %s: %w", e.Key(), err)
				}
				rooms = append(rooms, r)
			}
			return rooms, nil
		} else if ctx.Err() != nil {
			return nil, fmt.Errorf("list rooms: %w", err)
		}
	}
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list rooms: %w", err)
	}
	defer lister.Stop()
	rooms := []*Room{}
	for id := range lister.Keys() {
		r, _, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		rooms = append(rooms, r)
	}
	return rooms, nil
}

// Create stores a new room; ErrExists if its id is taken, ErrTooLarge if
// the bucket cannot hold it.
func (s *Store) Create(ctx context.Context, r *Room) error {
	b, err := encode(r)
	if err != nil {
		return err
	}
	if _, err := s.kv.Create(ctx, r.ID, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return ErrExists
		}
		if tooLarge(err) {
			return fmt.Errorf("%w (%d bytes)", ErrTooLarge, len(b))
		}
		return fmt.Errorf("create room %s: %w", r.ID, err)
	}
	return nil
}

// Update replaces a room if it is still at revision rev; ErrConflict if
// not, ErrTooLarge if the bucket cannot hold it.
func (s *Store) Update(ctx context.Context, r *Room, rev uint64) error {
	b, err := encode(r)
	if err != nil {
		return err
	}
	if _, err := s.kv.Update(ctx, r.ID, b, rev); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return ErrConflict
		}
		if tooLarge(err) {
			return fmt.Errorf("%w (%d bytes)", ErrTooLarge, len(b))
		}
		return fmt.Errorf("update room %s: %w", r.ID, err)
	}
	return nil
}

// encode writes a room as JSON without escaping <, > and & (the default
// writes each as six bytes, so a room of such text grows sixfold and no
// longer fits the bucket); a room is data, never inlined in HTML.
func encode(r *Room) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// tooLarge reports whether the bucket refused a value for its size: the
// server's limit (the bucket's own, or max_payload), or the client's.
func tooLarge(err error) bool {
	var api *jetstream.APIError
	return (errors.As(err, &api) && api.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum) ||
		errors.Is(err, nats.ErrMaxPayload)
}

// Delete removes a room; ErrNotFound if there is none.
func (s *Store) Delete(ctx context.Context, id string) error {
	if _, _, err := s.Get(ctx, id); err != nil {
		return err
	}
	if err := s.kv.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete room %s: %w", id, err)
	}
	return nil
}

// Event is a change to a room seen by Watch. Room is nil when it was deleted.
type Event struct {
	ID       string
	Room     *Room
	Revision uint64 // of the room's KV entry; Get returns the same numbers
}

// Watch sends the current rooms, then every change, until ctx ends. The
// channel is closed when the watch stops. A slow reader delays the watch;
// NATS buffers for it.
func (s *Store) Watch(ctx context.Context) (<-chan Event, error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch rooms: %w", err)
	}
	return kvwatch.Decoded(ctx, w, 16, func(e jetstream.KeyValueEntry) (Event, bool) {
		ev := Event{ID: e.Key(), Revision: e.Revision()}
		if e.Operation() == jetstream.KeyValuePut {
			r, err := decode(e.Value())
			if err != nil {
				return ev, false // not a room we can read; Get reports it
			}
			ev.Room = r
		}
		return ev, true
	}), nil
}

func decode(b []byte) (*Room, error) {
	var r Room
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return &r, nil
}

// Slug makes a room id from a name: "Keynote: Día 1" → "keynote-dia-1".
// It may return "" when the name has no usable letters.
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range norm.NFD.String(strings.ToLower(name)) {
		switch {
		case unicode.Is(unicode.Mn, r):
			// drop accents
		case r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= MaxIDLen-7 { // leave room for a suffix
			break
		}
	}
	return strings.Trim(b.String(), "-")
}
