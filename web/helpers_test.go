package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/room"
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
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t *testing.T, publicURL string) *fixture {
	t.Helper()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	logs := &syncBuffer{}
	f := &fixture{t: t, bus: b, rooms: room.NewStore(b.Rooms), logs: logs}
	f.server, err = New(Options{
		Rooms: f.rooms, State: b.State, AdminToken: testToken, PublicURL: publicURL,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
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
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.http.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	if strings.Contains(string(b), testToken) {
		f.t.Fatalf("%s %s: response holds the admin token: %s", method, path, b)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
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
