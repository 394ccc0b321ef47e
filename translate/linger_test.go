package translate

import (
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
)

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
	speaker := livestate.Entry{Key: livestate.MicKey("talk", "main"), Revision: 1, Present: true,
		Value: livestate.Encode(livestate.Mic{Node: "ingest1", Language: "en"})}
	listener := livestate.Entry{Key: livestate.ListenersKey("talk", "es", "fan1"), Revision: 2, Present: true,
		Value: livestate.Encode(livestate.Listeners{Count: 1})}
	for _, leave := range []livestate.Entry{
		{Key: listener.Key, Revision: 3},
		{Key: speaker.Key, Revision: 3},
	} {
		w.live.Apply(livestate.Update{Entries: []livestate.Entry{speaker, listener}})
		stale := time.Now().Add(-900 * time.Millisecond) // the last reconcile, a tick ago
		w.lastWant[key] = stale
		left := time.Now()
		w.onState(livestate.Update{Entries: []livestate.Entry{leave}})
		if live := w.live.Get("talk"); live.Listeners("es") > 0 && live.Speaking() {
			t.Fatalf("%s: the change was not applied", leave.Key)
		}
		if got := w.lastWant[key]; got.Before(left) {
			t.Errorf("%s: the channel was last live at %v, %v before the leave: its linger would end early",
				leave.Key, got.Format("15:04:05.000"), left.Sub(got).Round(time.Millisecond))
		}
	}
}
