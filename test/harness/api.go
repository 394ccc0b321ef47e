package harness

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// API is a client of babelcast's HTTP API for one test: requests carry
// Token as a bearer token, and any failure to talk to the server at all
// fails the test (an HTTP error status is an answer, returned).
type API struct {
	T     testing.TB
	URL   string // base URL, http://host:port
	Token string // bearer token; empty sends none
	// Client makes the requests; nil means one with a 10 s timeout.
	Client *http.Client
}

// Response is an answer with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode reads the body as JSON into v, failing the test if it is not.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// As is the same API with another bearer token ("" for none).
func (a *API) As(token string) *API {
	c := *a
	c.Token = token
	return &c
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// Do sends method path with body (JSON, unless header names another
// Content-Type) and header, given as name, value pairs.
func (a *API) Do(method, path, body string, header ...string) Response {
	a.T.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.URL+path, rd)
	if err != nil {
		a.T.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := a.Client
	if client == nil {
		client = defaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		a.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.T.Fatalf("%s %s: %v", method, path, err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Call sends the request, decodes a JSON answer into out (when out is not
// nil and there is an answer) and returns the HTTP status.
func (a *API) Call(method, path, body string, out any) int {
	a.T.Helper()
	r := a.Do(method, path, body)
	if out != nil && len(r.Body) > 0 {
		if err := json.Unmarshal(r.Body, out); err != nil {
			a.T.Fatalf("%s %s: %v in %s", method, path, err, r.Body)
		}
	}
	return r.Status
}

// Room is the part of the organizer API's room that tests use.
type Room struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	SpeakerKey string `json:"speaker_key"`
	Links      struct {
		Listen string            `json:"listen"`
		Speak  string            `json:"speak"`
		Booths map[string]string `json:"booths"`
	} `json:"links"`
	Languages []struct {
		Code     string `json:"code"`
		Booth    bool   `json:"booth"`
		BoothKey string `json:"booth_key"`
	} `json:"languages"`
}

// BoothKey is the booth key of language lang ("" when it has no booth).
func (r Room) BoothKey(lang string) string {
	for _, l := range r.Languages {
		if l.Code == lang {
			return l.BoothKey
		}
	}
	return ""
}

// CreateRoom creates a room from its JSON, failing the test otherwise.
func (a *API) CreateRoom(body string) Room {
	a.T.Helper()
	var r Room
	if code := a.Call("POST", "/api/v1/rooms", body, &r); code != http.StatusCreated {
		a.T.Fatalf("create room: HTTP %d", code)
	}
	return r
}

// Status is the organizer API's status of a room.
type Status struct {
	Speaker struct {
		Connected bool `json:"connected"`
	} `json:"speaker"`
	// Mics are the room's live mics.
	Mics  []MicStatus `json:"mics"`
	Floor struct {
		Code      string `json:"code"`
		Listeners int    `json:"listeners"`
		// MixListeners listen to the floor itself (lang=floor).
		MixListeners int `json:"mix_listeners"`
	} `json:"floor"`
	Languages []LangStatus `json:"languages"`
}

// MicStatus is one live mic in a Status.
type MicStatus struct {
	Mic      string  `json:"mic"`
	Name     string  `json:"name"`
	Language string  `json:"language"`
	LevelDB  float64 `json:"level_db"`
	Speaking bool    `json:"speaking"`
	Question string  `json:"question"`
}

// Mic is the live mic id's status, and whether it is live.
func (s Status) Mic(id string) (MicStatus, bool) {
	for _, m := range s.Mics {
		if m.Mic == id {
			return m, true
		}
	}
	return MicStatus{}, false
}

// LangStatus is one language in a Status.
type LangStatus struct {
	Code           string  `json:"code"`
	Listeners      int     `json:"listeners"`
	State          string  `json:"state"`
	Error          string  `json:"error"`
	Kind           string  `json:"kind"`
	Node           string  `json:"node"`
	SessionSeconds float64 `json:"session_seconds"`
}

// Lang is one language's status; its Listeners is -1 when the room lacks
// the language.
func (s Status) Lang(code string) LangStatus {
	for _, l := range s.Languages {
		if l.Code == code {
			return l
		}
	}
	return LangStatus{Code: code, Listeners: -1}
}

// Listeners counts a channel's listeners: the floor's for the room's
// source language, -1 for a language the room lacks.
func (s Status) Listeners(lang string) int {
	if lang == s.Floor.Code {
		return s.Floor.Listeners
	}
	return s.Lang(lang).Listeners
}

// Status reads a room's status, failing the test unless it is there.
func (a *API) Status(roomID string) Status {
	a.T.Helper()
	var st Status
	if code := a.Call("GET", "/api/v1/rooms/"+roomID+"/status", "", &st); code != http.StatusOK {
		a.T.Fatalf("status of %s: HTTP %d", roomID, code)
	}
	return st
}
