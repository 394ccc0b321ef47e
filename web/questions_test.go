package web

import (
	"fmt"
	"testing"

	"github.com/babelcast/babelcast/internal/access"
)

func TestQuestionsFromAskToEnd(t *testing.T) {
	f := newFixture(t, "")
	rm := f.createRoom(`{"id":"panel","source_language":"en","languages":[{"code":"fr"}],"questions":true,"max_mics":4}`)
	if !rm.Questions || rm.MaxMics != 4 {
		t.Fatalf("room %+v: questions and max_mics not kept", rm.Room)
	}
	f.createRoom(`{"id":"quiet","source_language":"en"}`)
	if r := f.request("POST", "/api/v1/rooms/quiet/questions", "", `{"language":"en"}`); r.status != 403 {
		t.Errorf("a room without questions took one: %d %s", r.status, r.body)
	}
	if r := f.request("POST", "/api/v1/rooms/panel/questions", "", `{"language":"de"}`); r.status != 400 {
		t.Errorf("a question in a language the room has not: %d %s", r.status, r.body)
	}

	// An attendee asks, in French, with no key at all.
	r := f.request("POST", "/api/v1/rooms/panel/questions", "", `{"name":"Zoé","language":"fr"}`)
	mustStatus(t, r, 201)
	var q questionJSON
	r.decode(t, &q)
	if q.ID == "" || q.State != "waiting" || q.Language != "fr" || q.Name != "Zoé" || q.Mic != "q-"+q.ID || q.Token == "" {
		t.Fatalf("asked %+v", q)
	}
	path := "/api/v1/rooms/panel/questions/" + q.ID

	// The queue is the moderators': the admin, or the speaker with the
	// room's key; never an attendee, never with tokens.
	if r := f.request("GET", "/api/v1/rooms/panel/questions", "", ""); r.status != 401 {
		t.Errorf("the queue without a key: %d", r.status)
	}
	if r := f.request("GET", "/api/v1/rooms/panel/questions", q.Token, ""); r.status != 403 {
		t.Errorf("the queue with a question's token: %d", r.status)
	}
	var list struct{ Questions []questionJSON }
	r = f.request("GET", "/api/v1/rooms/panel/questions", rm.SpeakerKey, "")
	mustStatus(t, r, 200)
	r.decode(t, &list)
	if len(list.Questions) != 1 || list.Questions[0].ID != q.ID || list.Questions[0].Token != "" {
		t.Fatalf("queue %+v", list.Questions)
	}

	// The asker follows their question, and cannot accept it.
	var got questionJSON
	r = f.request("GET", path, q.Token, "")
	mustStatus(t, r, 200)
	r.decode(t, &got)
	if got.State != "waiting" || got.Token != "" {
		t.Errorf("the asker sees %+v", got)
	}
	if r := f.request("POST", path+"/accept", q.Token, ""); r.status != 403 {
		t.Errorf("the asker accepted their own question: %d", r.status)
	}
	if r := f.request("GET", "/api/v1/rooms/panel/questions/nosuch", q.Token, ""); r.status != 403 {
		t.Errorf("another id with a token: %d, want 403 (no telling which ids exist)", r.status)
	}

	// The speaker accepts; the admin ends it; ended is final.
	r = f.request("POST", path+"/accept", rm.SpeakerKey, "")
	mustStatus(t, r, 200)
	r.decode(t, &got)
	if got.State != "accepted" {
		t.Fatalf("accepted: %+v", got)
	}
	mustStatus(t, f.admin("POST", path+"/end", ""), 200)
	if r := f.admin("POST", path+"/accept", ""); r.status != 409 {
		t.Errorf("an ended question accepted again: %d", r.status)
	}

	// The asker may withdraw a question of theirs.
	r = f.request("POST", "/api/v1/rooms/panel/questions", "", `{"language":"en"}`)
	r.decode(t, &q)
	mustStatus(t, f.request("POST", "/api/v1/rooms/panel/questions/"+q.ID+"/end", q.Token, ""), 200)

	// Deleting the room deletes its questions.
	mustStatus(t, f.admin("DELETE", "/api/v1/rooms/panel", ""), 204)
	f.createRoom(`{"id":"panel","source_language":"en","questions":true}`)
	r = f.admin("GET", "/api/v1/rooms/panel/questions", "")
	r.decode(t, &list)
	if len(list.Questions) != 0 {
		t.Errorf("a deleted room's questions came back: %+v", list.Questions)
	}
}

func TestQuestionNeedsThePasscode(t *testing.T) {
	f := newFixture(t, "")
	f.createRoom(`{"id":"closed","source_language":"en","questions":true,"passcode":"sesame"}`)
	if r := f.request("POST", "/api/v1/rooms/closed/questions", "", `{}`); r.status != 403 {
		t.Errorf("a question without the passcode: %d", r.status)
	}
	mustStatus(t, f.request("POST", "/api/v1/rooms/closed/questions", "", `{"passcode":"sesame"}`), 201)
}

// Asking a question checks the room's passcode: its guesses count against
// the same budget as the listener endpoints', and past it the right
// passcode is refused too (429) rather than told apart.
func TestQuestionPasscodeGuessesAreLimited(t *testing.T) {
	f := newFixture(t, "")
	f.createRoom(`{"id":"closed","source_language":"en","questions":true,"passcode":"sesame"}`)
	for i := range access.PasscodeBurst {
		if r := f.request("POST", "/api/v1/rooms/closed/questions", "", fmt.Sprintf(`{"passcode":"guess%d"}`, i)); r.status != 403 {
			t.Fatalf("guess %d: %d", i+1, r.status)
		}
	}
	r := f.request("POST", "/api/v1/rooms/closed/questions", "", `{"passcode":"sesame"}`)
	if r.status != 429 || r.header.Get("Retry-After") == "" || r.errBody(t).Code != "too_many_attempts" {
		t.Errorf("the right passcode after %d guesses: %d %s, want 429", access.PasscodeBurst, r.status, r.body)
	}
}
