package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAdminAuth(t *testing.T) {
	f := newFixture(t, "")
	f.createRoom(keynote)
	adminRoutes := []struct{ method, path, body string }{
		{"POST", "/api/v1/rooms", `{"source_language":"en"}`},
		{"GET", "/api/v1/rooms", ""},
		{"GET", "/api/v1/rooms/keynote", ""},
		{"PATCH", "/api/v1/rooms/keynote", `{"name":"x"}`},
		{"DELETE", "/api/v1/rooms/keynote", ""},
		{"GET", "/api/v1/rooms/keynote/status", ""},
		{"GET", "/api/v1/rooms/keynote/links", ""},
		{"GET", "/api/v1/rooms/keynote/qr.png", ""},
	}
	for _, rt := range adminRoutes {
		f.server.authFails.Prune(time.Now().Add(time.Hour)) // this test is not about the limit
		r := f.request(rt.method, rt.path, "", rt.body)
		mustStatus(t, r, http.StatusUnauthorized)
		if e := r.errBody(t); e.Code != "unauthorized" {
			t.Fatalf("%s %s without token: %+v", rt.method, rt.path, e)
		}
		if r.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%s %s: no WWW-Authenticate", rt.method, rt.path)
		}
		r = f.request(rt.method, rt.path, "", rt.body, "Authorization", "Basic "+testToken)
		mustStatus(t, r, http.StatusUnauthorized)

		// A prefix of the token, and the token with more after it, are wrong.
		for _, wrong := range []string{testToken[:len(testToken)-1], testToken + "x"} {
			r = f.request(rt.method, rt.path, wrong, rt.body)
			mustStatus(t, r, http.StatusForbidden)
			if e := r.errBody(t); e.Code != "forbidden" {
				t.Fatalf("%s %s with a wrong token: %+v", rt.method, rt.path, e)
			}
		}
	}
	// Nothing above changed the room.
	r := f.admin("GET", "/api/v1/rooms/keynote", "")
	mustStatus(t, r, 200)
	var rm adminRoomJSON
	r.decode(t, &rm)
	if rm.Name != "Keynote" {
		t.Fatalf("unauthorized patch landed: %+v", rm.Room)
	}
	// Public routes need no token.
	mustStatus(t, f.request("GET", "/api/v1/rooms/keynote/public", "", ""), 200)
	mustStatus(t, f.request("GET", "/api/v1/engines", "", ""), 200)
	// Case-insensitive scheme works.
	mustStatus(t, f.request("GET", "/api/v1/rooms", "", "", "Authorization", "bearer "+testToken), 200)
	if strings.Contains(f.logs.String(), testToken[:10]) {
		t.Fatal("log holds the admin token")
	}
}

func TestAdminAuthDisabledWithoutToken(t *testing.T) {
	f := newFixture(t, "")
	f.server.adminToken = nil
	r := f.request("GET", "/api/v1/rooms", "anything", "")
	mustStatus(t, r, http.StatusForbidden)
	if e := r.errBody(t); !strings.Contains(e.Message, "no admin token") {
		t.Fatalf("error %+v", e)
	}
}

// serve runs one request through the router with a given client address.
func serve(f *fixture, remote, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/api/v1/rooms", nil)
	req.RemoteAddr = remote
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	f.router.ServeHTTP(w, req)
	return w
}

func TestBruteForceLimit(t *testing.T) {
	f := newFixture(t, "")
	const attacker = "203.0.113.7:4000"
	for i := range authFailBurst {
		if w := serve(f, attacker, "guess"); w.Code != http.StatusForbidden {
			t.Fatalf("wrong token %d: status %d", i+1, w.Code)
		}
	}
	w := serve(f, attacker, "guess")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("after %d wrong tokens: status %d", authFailBurst, w.Code)
	}
	if !strings.Contains(w.Body.String(), "too_many_attempts") {
		t.Fatalf("body %s", w.Body)
	}
	// Wrong tokens are refused; the right one is never: an attendee
	// guessing behind the venue's one NAT address does not lock the
	// organizers out.
	if w := serve(f, attacker, testToken); w.Code != http.StatusOK {
		t.Fatalf("right token from a blocked address: status %d", w.Code)
	}
	// Same client on another port: still blocked for wrong tokens.
	if w := serve(f, "203.0.113.7:5000", "guess2"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("other port: status %d", w.Code)
	}
	// Another client is not affected.
	if w := serve(f, "198.51.100.1:4000", testToken); w.Code != http.StatusOK {
		t.Fatalf("other client: status %d", w.Code)
	}
	// IPv6 clients are grouped by /64.
	for range authFailBurst {
		serve(f, "[2001:db8:1:2::1]:4000", "guess")
	}
	if w := serve(f, "[2001:db8:1:2::ffff]:4000", "guess"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("same /64: status %d", w.Code)
	}
	if w := serve(f, "[2001:db8:1:3::1]:4000", testToken); w.Code != http.StatusOK {
		t.Fatalf("other /64: status %d", w.Code)
	}
}
