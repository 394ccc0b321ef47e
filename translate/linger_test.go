package translate

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
)

// kvEntry is a State bucket change as the watch delivers it.
type kvEntry struct {
	key string
	val []byte
	op  jetstream.KeyValueOp
}

func (e kvEntry) Bucket() string                  { return subject.BucketState }
func (e kvEntry) Key() string                     { return e.key }
func (e kvEntry) Value() []byte                   { return e.val }
func (e kvEntry) Revision() uint64                { return 1 }
func (e kvEntry) Created() time.Time              { return time.Now() }
func (e kvEntry) Delta() uint64                   { return 0 }
func (e kvEntry) Operation() jetstream.KeyValueOp { return e.op }

// The linger counts from the moment the last listener (or the speaker)
// left, not from the reconcile before it: with the production tick of 1 s,
// a session used to close up to a second early.
func TestLingerCountsFromTheLeave(t *testing.T) {
	h := newHarness(t)
	c := h.newConn()
	w, err := New(Options{NC: c.nc, Rooms: c.rooms, State: c.state, Leases: c.leases, Engine: newFakeEngine("fake"),
		Node: "tr1", Log: testLogger(), Linger: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.roomsByID["talk"] = &room.Room{ID: "talk", SourceLanguage: "en", Languages: []room.Language{{Code: "es"}}}
	key := subject.LeaseKey("talk", "es")
	for _, leave := range []kvEntry{
		{key: subject.ListenersKey("talk", "es", "fan1"), op: jetstream.KeyValueDelete},
		{key: subject.SpeakerKey("talk"), op: jetstream.KeyValueDelete},
	} {
		w.speakers["talk"] = true
		w.listeners[key] = map[string]int{"fan1": 1}
		stale := time.Now().Add(-900 * time.Millisecond) // the last reconcile, a tick ago
		w.lastWant[key] = stale
		left := time.Now()
		w.onState(leave)
		if len(w.listeners[key]) > 0 && w.speakers["talk"] {
			t.Fatalf("%s: the change was not applied", leave.key)
		}
		if got := w.lastWant[key]; got.Before(left) {
			t.Errorf("%s: the channel was last live at %v, %v before the leave: its linger would end early",
				leave.key, got.Format("15:04:05.000"), left.Sub(got).Round(time.Millisecond))
		}
	}
}
