package ingest

import (
	"context"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/wire"
)

// An interpreter whose booth is removed (the language keeps no booth, or
// leaves the room) is closed with 4404 and says so: booth_removed, not
// room_deleted, for a room that is still there.
func TestBoothRemovedCloses4404(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	rm, rev, err := e.rooms.Get(ctx, "keynote")
	if err != nil {
		t.Fatal(err)
	}
	prev := *rm
	rm.Languages[0].Booth = true // es
	if err := rm.AssignBoothKeys(&prev, false); err != nil {
		t.Fatal(err)
	}
	if err := e.rooms.Update(ctx, rm, rev); err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.DefaultDialer.Dial(wsURL(e.http, "/api/v1/rooms/keynote/booth/es"),
		http.Header{"Authorization": {"Bearer " + rm.Languages[0].BoothKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next(t, c, "ready")

	rm, rev, err = e.rooms.Get(ctx, "keynote")
	if err != nil {
		t.Fatal(err)
	}
	rm.Languages[0].Booth, rm.Languages[0].BoothKey = false, ""
	if err := e.rooms.Update(ctx, rm, rev); err != nil {
		t.Fatal(err)
	}
	msgs, code := readUntilClose(t, c)
	if code != wire.CloseRoomGone || lastError(msgs).Code != wire.CodeBoothRemoved {
		t.Fatalf("close %d %+v, want 4404 %s", code, lastError(msgs), wire.CodeBoothRemoved)
	}
}
