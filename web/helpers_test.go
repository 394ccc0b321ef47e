package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/test/harness"
)

const testToken = "adm_test-token-0123456789"

// fixture is an api role on a real embedded NATS, served by httptest.
type fixture struct {
	t      *testing.T
	bus    *bus.Bus
	rooms  *room.Store
	server *Server
	router chi.Router
	http   *httptest.Server
	api    *harness.API
	logs   *harness.Logs
}

// recordStore is the record of events kept on b.
func recordStore(b *bus.Bus) *record.Store {
	return &record.Store{JS: b.JS, Cues: b.Transcript, Recordings: b.Recordings}
}

// newFixture runs the API server on a bus of its own, so the test runs in
// parallel with the others (newFixture says so: a web test calls it first,
// once).
func newFixture(t *testing.T, publicURL string) *fixture {
	t.Helper()
	t.Parallel()
	b := harness.Bus(t)
	f := &fixture{t: t, bus: b, rooms: room.NewStore(b.Rooms), logs: &harness.Logs{}}
	var err error
	f.server, err = New(Options{
		Rooms: f.rooms, Questions: question.NewStore(b.Questions), State: b.State, AdminToken: testToken, PublicURL: publicURL, Log: f.logs.Logger(),
		Record: recordStore(b),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.server.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	r := chi.NewRouter()
	f.server.Mount(r)
	f.router = r
	f.http = httptest.NewServer(r)
	t.Cleanup(f.http.Close)
	f.api = &harness.API{T: t, URL: f.http.URL}
	return f
}

// resp is a finished response with its body read.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errBody decodes an error response.
func (r resp) errBody(t *testing.T) httperr.Detail {
	t.Helper()
	var b httperr.Body
	r.decode(t, &b)
	return b.Error
}

// request sends method path with body (JSON unless a Content-Type header
// says otherwise) and the admin token when token is non-empty.
func (f *fixture) request(method, path, token, body string, hdr ...string) resp {
	f.t.Helper()
	r := f.api.As(token).Do(method, path, body, hdr...)
	if strings.Contains(string(r.Body), testToken) {
		f.t.Fatalf("%s %s: response holds the admin token: %s", method, path, r.Body)
	}
	return resp{status: r.Status, header: r.Header, body: r.Body}
}

// admin sends an authorized request.
func (f *fixture) admin(method, path, body string, hdr ...string) resp {
	f.t.Helper()
	return f.request(method, path, testToken, body, hdr...)
}

// mustStatus fails the test unless r has the status.
func mustStatus(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
}

// createRoom creates a room and returns it as the API answered.
func (f *fixture) createRoom(body string) adminRoomJSON {
	f.t.Helper()
	r := f.admin("POST", "/api/v1/rooms", body)
	mustStatus(f.t, r, http.StatusCreated)
	var rm adminRoomJSON
	r.decode(f.t, &rm)
	return rm
}

// adminRoomJSON is an admin room response.
type adminRoomJSON struct {
	room.Room
	Links Links `json:"links"`
}

// putState writes a State entry as another role would.
func (f *fixture) putState(key string, v any) {
	f.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.bus.State.Put(context.Background(), key, b); err != nil {
		f.t.Fatal(err)
	}
}
