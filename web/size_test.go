package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/test/harness"
)

// A room within every limit fits the rooms bucket however its text is
// made: a body of '<', '>' and '&' under the request limit is stored and
// read back as sent, not refused as an internal error.
func TestLargeRoomOfMarkupCharactersIsStored(t *testing.T) {
	f := newFixture(t, "")
	var glossary []room.GlossaryEntry
	for i := range room.MaxGlossary {
		tr := map[string]string{}
		for _, l := range []string{"es", "fr", "de", "it", "pt"} {
			tr[l] = strings.Repeat("&", room.MaxTermLen)
		}
		glossary = append(glossary, room.GlossaryEntry{
			Term: fmt.Sprintf("t%d%s", i, strings.Repeat("<", room.MaxTermLen-5)),
			Note: strings.Repeat(">", room.MaxNoteLen), Translations: tr,
		})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as a client would send it: '<' is one byte
	if err := enc.Encode(map[string]any{"id": "big", "source_language": "en", "glossary": glossary}); err != nil {
		t.Fatal(err)
	}
	body := buf.Bytes()
	if len(body) < 230<<10 || len(body) > maxBody {
		t.Fatalf("test body is %d bytes; want 230 KiB to the %d KiB limit", len(body), maxBody>>10)
	}
	r := f.admin("POST", "/api/v1/rooms", string(body))
	mustStatus(t, r, http.StatusCreated)
	var got adminRoomJSON
	f.admin("GET", "/api/v1/rooms/big", "").decode(t, &got)
	if !reflect.DeepEqual(got.Glossary, glossary) {
		t.Error("the glossary read back differs from the one sent")
	}
}

// A room the bucket cannot hold is refused with 413 and the API's error
// shape, and nothing is stored.
func TestRoomTooLargeToStoreIs413(t *testing.T) {
	f := newFixture(t, "")
	ctx := context.Background()
	small, err := f.bus.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "small_rooms", MaxValueSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Rooms: room.NewStore(small), Questions: question.NewStore(f.bus.Questions), State: f.bus.State, AdminToken: testToken, Log: slog.New(slog.DiscardHandler), Record: recordStore(f.bus)})
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	s.Mount(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	f.http = srv
	f.api = &harness.API{T: t, URL: srv.URL}
	res := f.admin("POST", "/api/v1/rooms", `{"id":"wordy","source_language":"en","notes":"`+strings.Repeat("a", room.MaxNotesLen)+`"}`)
	mustStatus(t, res, http.StatusRequestEntityTooLarge)
	if e := res.errBody(t); e.Code != "too_large" || e.Message == "" {
		t.Errorf("error %+v", e)
	}
	mustStatus(t, f.admin("GET", "/api/v1/rooms/wordy", ""), http.StatusNotFound)
	// A PATCH that grows a room past the limit is refused the same way,
	// and the room stays as it was.
	f.createRoom(`{"id":"short","source_language":"en","notes":"brief"}`)
	res = f.admin("PATCH", "/api/v1/rooms/short", `{"notes":"`+strings.Repeat("a", room.MaxNotesLen)+`"}`)
	mustStatus(t, res, http.StatusRequestEntityTooLarge)
	var got adminRoomJSON
	f.admin("GET", "/api/v1/rooms/short", "").decode(t, &got)
	if got.Notes != "brief" {
		t.Errorf("notes after a refused PATCH: %q", got.Notes)
	}
}
