package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/internal/wire"
)

// TestTranscriptAccess: transcripts are the organizers', and the
// attendees' too where the room says so, with its passcode; recordings
// are the organizers' only.
func TestTranscriptAccess(t *testing.T) {
	f := newFixture(t, "")
	f.createRoom(`{"id":"open","source_language":"en","languages":[{"code":"es"}],"public_transcript":true,"passcode":"1234"}`)
	f.createRoom(`{"id":"closed","source_language":"en","languages":[{"code":"es"}]}`)
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	if err := recordStore(f.bus).AddCue(context.Background(), "open", "es", record.Cue{Start: at, End: at.Add(2 * time.Second), Text: "Hola.", Speaker: "Ana"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, token string
		status      int
		body        string
	}{
		{"/api/v1/rooms/open/transcript?lang=es&format=txt&passcode=1234", "", 200, "Ana: Hola.\n"},
		{"/api/v1/rooms/open/transcript?lang=es&format=vtt&passcode=1234", "", 200, "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n<v Ana>Hola.\n"},
		{"/api/v1/rooms/open/transcript?lang=es&passcode=0000", "", 403, "passcode"},
		{"/api/v1/rooms/open/transcript?lang=es", testToken, 200, `"cues":[{"start":"2026-12-02T09:00:00Z"`},
		{"/api/v1/rooms/open/transcript?lang=ES&format=srt", testToken, 200, "1\n00:00:00,000 --> 00:00:02,000\nAna: Hola.\n"},
		{"/api/v1/rooms/closed/transcript?lang=es", "", 401, "admin token"},
		{"/api/v1/rooms/closed/transcript?lang=es", testToken, 200, `"cues":[]`},
		{"/api/v1/rooms/open/transcript?lang=de", testToken, 400, "floor, en, es"},
		{"/api/v1/rooms/open/transcript?lang=es&format=pdf", testToken, 400, "vtt, srt, txt, json"},
		{"/api/v1/rooms/open/recordings", "", 401, "admin token"},
		{"/api/v1/rooms/open/recordings", testToken, 200, `{"recordings":[]}`},
		{"/api/v1/rooms/open/recordings/es.ogg", testToken, 404, "no recording"},
		{"/api/v1/rooms/open/recordings/es.wav", testToken, 404, "recordings are"},
	} {
		r := f.request("GET", c.path, c.token, "")
		if r.status != c.status || !strings.Contains(string(r.body), c.body) {
			t.Errorf("GET %s: %d %q, want %d with %q", c.path, r.status, r.body, c.status, c.body)
		}
	}
	// The passcode may come in a header, out of the URL (and access logs).
	if r := f.request("GET", "/api/v1/rooms/open/transcript?lang=es&format=txt", "", "", wire.HeaderPasscode, "1234"); r.status != 200 || string(r.body) != "Ana: Hola.\n" {
		t.Errorf("passcode in %s: %d %q", wire.HeaderPasscode, r.status, r.body)
	}
	if r := f.request("GET", "/api/v1/rooms/open/transcript?lang=es", "", "", wire.HeaderPasscode, "0000"); r.status != 403 {
		t.Errorf("a wrong passcode in %s: %d %q, want 403", wire.HeaderPasscode, r.status, r.body)
	}
	// Deleting the room deletes its transcript.
	mustStatus(t, f.request("DELETE", "/api/v1/rooms/open", testToken, ""), 204)
	if cues, err := recordStore(f.bus).ReadCues(context.Background(), "open", ""); err != nil || len(cues) != 0 {
		t.Errorf("cues left after the room's deletion: %v %v", cues, err)
	}
}
