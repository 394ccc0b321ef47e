package translate

import (
	"testing"

	"github.com/babelcast/babelcast/internal/room"
)

// TestRecordedRoomRunsEveryChannel: a room with "record":true keeps its
// channels' record, listened to or not, so its translators run without
// listeners while a speaker talks.
func TestRecordedRoomRunsEveryChannel(t *testing.T) {
	h := newHarness(t)
	eng := newFakeEngine("fake")
	h.createRoom("talk", room.Language{Code: "es"})
	h.updateRoom("talk", func(r *room.Room) { r.Record = true })
	h.speaker("talk", true)
	h.start(eng, "tr1", nil)
	eng.waitOpen(t, "es")
	h.waitActive("talk", "es")
}
