package web

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/babelcast/babelcast/internal/room"
)

// TestPatchOneFieldAlone sends each patchable room field on its own: every
// one must be stored and answered, not taken for "nothing changed" (a
// PATCH {"record":true} that answers 200 and records nothing is a silent
// drop).
func TestPatchOneFieldAlone(t *testing.T) {
	f := newFixture(t, "")
	f.createRoom(`{"id":"solo","source_language":"en","languages":[{"code":"es"}]}`)
	for _, c := range []struct {
		body string
		ok   func(a adminRoomJSON) bool
	}{
		{`{"max_mics":3}`, func(a adminRoomJSON) bool { return a.MaxMics == 3 }},
		{`{"questions":true}`, func(a adminRoomJSON) bool { return a.Questions }},
		{`{"record":true}`, func(a adminRoomJSON) bool { return a.Record }},
		{`{"public_transcript":true}`, func(a adminRoomJSON) bool { return a.PublicTranscript }},
		{`{"notes":"about NATS"}`, func(a adminRoomJSON) bool { return a.Notes == "about NATS" }},
		{`{"name":"Solo"}`, func(a adminRoomJSON) bool { return a.Name == "Solo" }},
	} {
		r := f.admin("PATCH", "/api/v1/rooms/solo", c.body)
		mustStatus(t, r, 200)
		var answered adminRoomJSON
		r.decode(t, &answered)
		if !c.ok(answered) {
			t.Errorf("PATCH %s answered %+v", c.body, answered.Room)
		}
		stored, _, err := f.rooms.Get(context.Background(), "solo")
		if err != nil {
			t.Fatal(err)
		}
		if !c.ok(adminRoomJSON{Room: *stored}) {
			t.Errorf("PATCH %s stored %+v", c.body, *stored)
		}
	}
}

// TestChangedFieldsCoversEveryField changes each field of a room a PATCH
// may set, one at a time: changedFields must see it, or that PATCH is
// answered as a no-op. A field added to room.Room later fails here until
// changedFields compares it.
func TestChangedFieldsCoversEveryField(t *testing.T) {
	t.Parallel()
	base := room.Room{ID: "r", Name: "R", SourceLanguage: "en", MaxMics: 8}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		switch name {
		case "ID", "CreatedAt", "UpdatedAt": // not changed by a PATCH
			continue
		}
		next := base
		v := reflect.ValueOf(&next).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString("changed")
		case reflect.Int:
			v.SetInt(3)
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		default:
			t.Fatalf("field %s of kind %s: teach this test to change it", name, v.Kind())
		}
		if len(changedFields(&base, &next)) == 0 {
			t.Errorf("changedFields does not see a change of %s", name)
		}
	}
}

// A room as GET answers it, with a field edited, is a valid PATCH body:
// the read-only fields it carries (times, links, keys unchanged) are
// accepted and change nothing.
func TestPatchWithTheRoomAsReturned(t *testing.T) {
	f := newFixture(t, "")
	f.createRoom(`{"id":"back","source_language":"en","languages":[{"code":"es","booth":true}]}`)
	r := f.admin("GET", "/api/v1/rooms/back", "")
	mustStatus(t, r, 200)
	var got map[string]any
	r.decode(t, &got)
	got["name"] = "Sent back"
	body, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, f.admin("PATCH", "/api/v1/rooms/back", string(body)), 200)
	stored, _, err := f.rooms.Get(context.Background(), "back")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Name != "Sent back" || stored.SpeakerKey != got["speaker_key"] {
		t.Errorf("stored %+v", *stored)
	}
	// Still strict: a field the API never returns is refused.
	r = f.admin("PATCH", "/api/v1/rooms/back", `{"nmae":"typo"}`)
	mustStatus(t, r, 400)
}
