package web

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/babelcast/babelcast/internal/room"
)

const keynote = `{"id":"keynote","name":"Keynote","source_language":"en",
  "languages":[{"code":"es"},{"code":"nl","voice":"marin","mode":"interpret"}],
  "glossary":[{"term":"NATS","note":"product name, keep"}]}`

func TestRoomRoundTrip(t *testing.T) {
	f := newFixture(t, "https://talks.example.org/")

	rm := f.createRoom(keynote)
	if rm.ID != "keynote" || rm.Name != "Keynote" || rm.SourceLanguage != "en" {
		t.Fatalf("created %+v", rm.Room)
	}
	if !strings.HasPrefix(rm.SpeakerKey, "spk_") {
		t.Fatalf("speaker key %q", rm.SpeakerKey)
	}
	if len(rm.Languages) != 2 || rm.Languages[0].Mode != room.ModeAuto || rm.Languages[1].Voice != "marin" {
		t.Fatalf("languages %+v", rm.Languages)
	}
	if len(rm.Glossary) != 1 || rm.Glossary[0].Term != "NATS" {
		t.Fatalf("glossary %+v", rm.Glossary)
	}
	if rm.Links.Listen != "https://talks.example.org/rooms/keynote" ||
		rm.Links.Speak != "https://talks.example.org/rooms/keynote/speak#key="+rm.SpeakerKey {
		t.Fatalf("links %+v", rm.Links)
	}
	stored, _, err := f.rooms.Get(context.Background(), "keynote")
	if err != nil || stored.SpeakerKey != rm.SpeakerKey {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	f.createRoom(`{"id":"a-first","source_language":"de"}`)
	var list struct{ Rooms []adminRoomJSON }
	r := f.admin("GET", "/api/v1/rooms", "")
	mustStatus(t, r, 200)
	r.decode(t, &list)
	if len(list.Rooms) != 2 || list.Rooms[0].ID != "a-first" || list.Rooms[1].ID != "keynote" ||
		list.Rooms[1].SpeakerKey != rm.SpeakerKey {
		t.Fatalf("list %+v", list)
	}

	var got adminRoomJSON
	r = f.admin("GET", "/api/v1/rooms/keynote", "")
	mustStatus(t, r, 200)
	r.decode(t, &got)
	if got.Name != "Keynote" || got.SpeakerKey != rm.SpeakerKey || len(got.Languages) != 2 {
		t.Fatalf("get %+v", got)
	}

	r = f.admin("PATCH", "/api/v1/rooms/keynote",
		`{"name":"Opening keynote","languages":[{"code":"fr"}],"passcode":"hush"}`)
	mustStatus(t, r, 200)
	var patched adminRoomJSON
	r.decode(t, &patched)
	if patched.Name != "Opening keynote" || len(patched.Languages) != 1 || patched.Languages[0].Code != "fr" ||
		patched.Passcode != "hush" || len(patched.Glossary) != 1 || patched.SpeakerKey != rm.SpeakerKey ||
		!patched.UpdatedAt.After(rm.UpdatedAt) || !patched.CreatedAt.Equal(rm.CreatedAt) {
		t.Fatalf("patched %+v", patched.Room)
	}
	stored, _, _ = f.rooms.Get(context.Background(), "keynote")
	if stored.Name != "Opening keynote" || stored.Passcode != "hush" {
		t.Fatalf("stored after patch %+v", stored)
	}
	// The room as returned may be sent back: same id and key are accepted.
	r = f.admin("PATCH", "/api/v1/rooms/keynote",
		fmt.Sprintf(`{"id":"keynote","speaker_key":%q,"passcode":""}`, rm.SpeakerKey))
	mustStatus(t, r, 200)
	if stored, _, _ = f.rooms.Get(context.Background(), "keynote"); stored.Passcode != "" {
		t.Fatalf("passcode not cleared: %+v", stored)
	}

	mustStatus(t, f.admin("DELETE", "/api/v1/rooms/keynote", ""), http.StatusNoContent)
	r = f.admin("GET", "/api/v1/rooms/keynote", "")
	mustStatus(t, r, 404)
	if e := r.errBody(t); e.Code != "not_found" {
		t.Fatalf("error %+v", e)
	}
	mustStatus(t, f.admin("DELETE", "/api/v1/rooms/keynote", ""), 404)
	mustStatus(t, f.admin("PATCH", "/api/v1/rooms/keynote", `{"name":"x"}`), 404)

	logs := f.logs.String()
	for _, want := range []string{"room created", "room=keynote", "room updated", "changed=", "room deleted"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, rm.SpeakerKey) || strings.Contains(logs, "hush") || strings.Contains(logs, testToken) {
		t.Errorf("log holds a secret:\n%s", logs)
	}
}

func TestCreateGeneratesID(t *testing.T) {
	f := newFixture(t, "")
	a := f.createRoom(`{"name":"Keynote: Día 1","source_language":"en"}`)
	if a.ID != "keynote-dia-1" {
		t.Fatalf("id %q", a.ID)
	}
	b := f.createRoom(`{"name":"Keynote: Día 1","source_language":"en"}`)
	if !regexp.MustCompile(`^keynote-dia-1-[a-z0-9]{5}$`).MatchString(b.ID) {
		t.Fatalf("second id %q", b.ID)
	}
	c := f.createRoom(`{"name":"!!!","source_language":"en"}`)
	if !regexp.MustCompile(`^room-[a-z0-9]{5}$`).MatchString(c.ID) || c.Name != "!!!" {
		t.Fatalf("id of a name without letters %q (%q)", c.ID, c.Name)
	}
	d := f.createRoom(`{"source_language":"en"}`)
	if !regexp.MustCompile(`^room-[a-z0-9]{5}$`).MatchString(d.ID) || d.Name != d.ID {
		t.Fatalf("id without name %q (%q)", d.ID, d.Name)
	}
	if a.SpeakerKey == b.SpeakerKey {
		t.Fatal("two rooms got the same speaker key")
	}

	r := f.admin("POST", "/api/v1/rooms", `{"id":"keynote-dia-1","source_language":"fr"}`)
	mustStatus(t, r, http.StatusConflict)
	if e := r.errBody(t); e.Code != "room_exists" || !strings.Contains(e.Message, "keynote-dia-1") {
		t.Fatalf("error %+v", e)
	}
	stored, _, _ := f.rooms.Get(context.Background(), "keynote-dia-1")
	if stored.SourceLanguage != "en" || stored.SpeakerKey != a.SpeakerKey {
		t.Fatalf("conflicting create changed the room: %+v", stored)
	}
}

func TestValidation(t *testing.T) {
	f := newFixture(t, "")
	f.createRoom(`{"id":"taken","source_language":"en","languages":[{"code":"es"}]}`)

	many := make([]string, room.MaxLanguages+1)
	for i := range many {
		many[i] = fmt.Sprintf(`{"code":"%s"}`, []string{"es", "fr", "de", "it", "nl", "pt", "ja", "zh", "ko", "ru",
			"ar", "hi", "sv", "da", "fi", "pl", "cs", "tr", "el", "he", "hu", "ro", "uk", "vi", "id"}[i])
	}
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code, msg                       string
	}{
		{"malformed", "POST", "/api/v1/rooms", "", `{"id":"x",`, 400, "invalid_request", "malformed JSON"},
		{"syntax", "POST", "/api/v1/rooms", "", `{"id" "x"}`, 400, "invalid_request", "at byte"},
		{"wrong type", "POST", "/api/v1/rooms", "", `{"id":7,"source_language":"en"}`, 400, "invalid_request", "field id must be a string, not number"},
		{"unknown field", "POST", "/api/v1/rooms", "", `{"source_language":"en","colour":"red"}`, 400, "invalid_request", `unknown field "colour"`},
		{"unknown nested field", "POST", "/api/v1/rooms", "", `{"source_language":"en","languages":[{"code":"es","speed":2}]}`, 400, "invalid_request", `unknown field "speed"`},
		{"two objects", "POST", "/api/v1/rooms", "", `{"source_language":"en"}{"source_language":"en"}`, 400, "invalid_request", "single JSON object"},
		{"trailing garbage", "POST", "/api/v1/rooms", "", `{"source_language":"en"} x`, 400, "invalid_request", "single JSON object"},
		{"array", "POST", "/api/v1/rooms", "", `[{"source_language":"en"}]`, 400, "invalid_request", "JSON object"},
		{"empty", "POST", "/api/v1/rooms", "application/json", ``, 400, "invalid_request", "empty"},
		{"oversized", "POST", "/api/v1/rooms", "", `{"source_language":"en","notes":"` + strings.Repeat("a", maxBody) + `"}`, 413, "too_large", "256 KiB"},
		{"not JSON", "POST", "/api/v1/rooms", "text/plain", `{"source_language":"en"}`, 415, "unsupported_media_type", "application/json"},
		{"form", "POST", "/api/v1/rooms", "application/x-www-form-urlencoded", `a=b`, 415, "unsupported_media_type", "JSON"},
		{"missing source", "POST", "/api/v1/rooms", "", `{"name":"x"}`, 400, "invalid_room", "source_language: is required"},
		{"unknown language", "POST", "/api/v1/rooms", "", `{"source_language":"en","languages":[{"code":"klingon"}]}`, 400, "invalid_room", "languages[0].code"},
		{"unknown source", "POST", "/api/v1/rooms", "", `{"source_language":"xx"}`, 400, "invalid_room", "source_language"},
		{"duplicate language", "POST", "/api/v1/rooms", "", `{"source_language":"en","languages":[{"code":"es"},{"code":"ES"}]}`, 400, "invalid_room", "languages[1].code: es is listed twice"},
		{"source as target", "POST", "/api/v1/rooms", "", `{"source_language":"en","languages":[{"code":"en"}]}`, 400, "invalid_room", "languages[0].code"},
		{"bad voice", "POST", "/api/v1/rooms", "", `{"source_language":"en","languages":[{"code":"es","voice":"darth"}]}`, 400, "invalid_room", "languages[0].voice"},
		{"bad mode", "POST", "/api/v1/rooms", "", `{"source_language":"en","languages":[{"code":"es","mode":"loud"}]}`, 400, "invalid_room", "languages[0].mode"},
		{"bad id", "POST", "/api/v1/rooms", "", `{"id":"Bad_ID","source_language":"en"}`, 400, "invalid_room", "id:"},
		{"long id", "POST", "/api/v1/rooms", "", `{"id":"` + strings.Repeat("a", room.MaxIDLen+1) + `","source_language":"en"}`, 400, "invalid_room", "id:"},
		{"too many languages", "POST", "/api/v1/rooms", "", `{"source_language":"en","languages":[` + strings.Join(many, ",") + `]}`, 400, "invalid_room", "languages: at most 24"},
		{"empty term", "POST", "/api/v1/rooms", "", `{"source_language":"en","glossary":[{"term":" "}]}`, 400, "invalid_room", "glossary[0].term"},
		{"speaker key set", "POST", "/api/v1/rooms", "", `{"source_language":"en","speaker_key":"mine"}`, 400, "invalid_room", "speaker_key"},
		{"patch id", "PATCH", "/api/v1/rooms/taken", "", `{"id":"other"}`, 400, "invalid_room", "id: cannot be changed"},
		{"patch key", "PATCH", "/api/v1/rooms/taken", "", `{"speaker_key":"spk_mine"}`, 400, "invalid_room", "rotate_speaker_key"},
		{"patch created_at", "PATCH", "/api/v1/rooms/taken", "", `{"created_at":"2020-01-01T00:00:00Z"}`, 400, "invalid_room", "created_at: cannot be changed"},
		{"patch unknown field", "PATCH", "/api/v1/rooms/taken", "", `{"nmae":"typo"}`, 400, "invalid_request", "unknown field"},
		{"patch bad voice", "PATCH", "/api/v1/rooms/taken", "", `{"languages":[{"code":"es","voice":"darth"}]}`, 400, "invalid_room", "languages[0].voice"},
		{"patch two objects", "PATCH", "/api/v1/rooms/taken", "", `{"name":"a"}{"name":"b"}`, 400, "invalid_request", "single JSON object"},
		{"patch oversized", "PATCH", "/api/v1/rooms/taken", "", `{"notes":"` + strings.Repeat("a", maxBody) + `"}`, 413, "too_large", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.ctype != "" {
				hdr = []string{"Content-Type", c.ctype}
			}
			r := f.admin(c.method, c.path, c.body, hdr...)
			mustStatus(t, r, c.status)
			e := r.errBody(t)
			if e.Code != c.code || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("error %+v, want code %q with %q", e, c.code, c.msg)
			}
		})
	}

	rooms, err := f.rooms.List(context.Background())
	if err != nil || len(rooms) != 1 {
		t.Fatalf("invalid requests created rooms: %d, %v", len(rooms), err)
	}
	if rooms[0].Name != "taken" || len(rooms[0].Languages) != 1 || rooms[0].Languages[0].Voice != "" {
		t.Fatalf("invalid patches changed the room: %+v", rooms[0])
	}
}

func TestRotateSpeakerKey(t *testing.T) {
	f := newFixture(t, "")
	old := f.createRoom(keynote)

	r := f.admin("PATCH", "/api/v1/rooms/keynote", `{"rotate_speaker_key":true}`)
	mustStatus(t, r, 200)
	var rotated adminRoomJSON
	r.decode(t, &rotated)
	if rotated.SpeakerKey == old.SpeakerKey || !strings.HasPrefix(rotated.SpeakerKey, "spk_") {
		t.Fatalf("key not rotated: %q → %q", old.SpeakerKey, rotated.SpeakerKey)
	}
	if !strings.HasSuffix(rotated.Links.Speak, "#key="+rotated.SpeakerKey) {
		t.Fatalf("speak link %q", rotated.Links.Speak)
	}
	stored, _, err := f.rooms.Get(context.Background(), "keynote")
	if err != nil {
		t.Fatal(err)
	}
	if stored.CheckSpeakerKey(old.SpeakerKey) {
		t.Fatal("old speaker key still matches")
	}
	if !stored.CheckSpeakerKey(rotated.SpeakerKey) {
		t.Fatal("new speaker key does not match")
	}
	if stored.Name != old.Name || len(stored.Languages) != 2 {
		t.Fatalf("rotation changed other fields: %+v", stored)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "speaker_key") ||
		strings.Contains(logs, rotated.SpeakerKey) || strings.Contains(logs, old.SpeakerKey) {
		t.Fatalf("rotation log:\n%s", logs)
	}
}

// Concurrent PATCHes of different fields must both land: the loser of the
// KV revision race re-reads and re-applies instead of overwriting.
func TestPatchConcurrent(t *testing.T) {
	f := newFixture(t, "")
	f.createRoom(keynote)
	const n = 2
	var wg sync.WaitGroup
	statuses := make([]int, n)
	bodies := []string{`{"name":"Renamed"}`, `{"notes":"about NATS"}`}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = f.admin("PATCH", "/api/v1/rooms/keynote", bodies[i]).status
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 200 {
			t.Fatalf("patch %d: status %d", i, s)
		}
	}
	stored, _, _ := f.rooms.Get(context.Background(), "keynote")
	if stored.Name != "Renamed" || stored.Notes != "about NATS" {
		t.Fatalf("a concurrent patch was lost: %+v", stored)
	}
}

func TestPublicRoom(t *testing.T) {
	f := newFixture(t, "")
	rm := f.createRoom(`{"id":"secret","name":"Secret talk","source_language":"en","passcode":"letmein",
	  "languages":[{"code":"es"},{"code":"pt-br"}],"glossary":[{"term":"Zanzibar","note":"codename"}],"notes":"internal"}`)

	r := f.request("GET", "/api/v1/rooms/secret/public", "", "")
	mustStatus(t, r, 200)
	for _, secret := range []string{rm.SpeakerKey, "speaker_key", "letmein", "Zanzibar", "glossary", "internal"} {
		if strings.Contains(string(r.body), secret) {
			t.Fatalf("public room shows %q: %s", secret, r.body)
		}
	}
	var pub room.Public
	r.decode(t, &pub)
	if pub.ID != "secret" || pub.Name != "Secret talk" || !pub.Passcode || pub.SourceLanguage.Code != "en" ||
		len(pub.Languages) != 2 || pub.Languages[1].Code != "pt-BR" || pub.Languages[0].Native != "Español" {
		t.Fatalf("public %+v", pub)
	}
	mustStatus(t, f.request("GET", "/api/v1/rooms/nope/public", "", ""), 404)
	mustStatus(t, f.request("GET", "/api/v1/rooms/Bad%20Id/public", "", ""), 404)
}
