package app_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/test/harness/service"
)

// Start returns a ready process: its translator has registered its engine,
// so the API checks a new room's languages from the first request on.
func TestStartReturnsWithTheEngineRegistered(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Config: func(c *app.Config) {
		c.Node, c.Roles = "n1", []string{app.RoleTranslate, app.RoleAPI}
		c.Engine, c.OpenAIKey, c.RealtimeURL = "openai", "sk-test", "ws://127.0.0.1:1/v1/realtime"
	}})
	for _, path := range []string{"/readyz", "/api/v1/engines"} {
		var body struct {
			Status  string `json:"status"`
			Engines []struct {
				Node   string `json:"node"`
				Engine string `json:"engine"`
			} `json:"engines"`
		}
		if code := s.API.Call("GET", path, "", &body); code != 200 {
			t.Fatalf("GET %s: %d", path, code)
		}
		if path == "/readyz" && body.Status != "ready" {
			t.Errorf("readyz right after Start: %q", body.Status)
		}
		if path == "/api/v1/engines" && (len(body.Engines) != 1 || body.Engines[0].Node != "n1" || body.Engines[0].Engine != "openai") {
			t.Errorf("engines right after Start: %+v, want n1's openai", body.Engines)
		}
	}
}

// Behind a trusted load balancer, the admin token's brute-force limit
// counts each client by its X-Forwarded-For address: one guesser is
// blocked, the organizer behind the same balancer is not.
func TestAdminLimitPerClientBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Config: func(c *app.Config) {
		c.Roles, c.TrustedProxies = []string{app.RoleAPI}, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}})
	get := func(client, token string) int {
		t.Helper()
		return s.API.As(token).Do("GET", "/api/v1/rooms", "", "X-Forwarded-For", client).Status
	}
	blocked := false
	for range 30 {
		if get("203.0.113.66", "adm_guess") == http.StatusTooManyRequests {
			blocked = true
			break
		}
	}
	if !blocked {
		t.Fatal("30 wrong tokens from one client were never refused with 429")
	}
	if code := get("203.0.113.10", service.AdminToken); code != http.StatusOK {
		t.Errorf("the organizer behind the same load balancer: %d, want 200", code)
	}
	// The right token is never refused, even from the guesser's address:
	// at a venue, the organizers may share it.
	if code := get("203.0.113.66", service.AdminToken); code != http.StatusOK {
		t.Errorf("the right token from the guesser's address: %d, want 200", code)
	}
}

// The HTTP server closes connections that idle between requests or never
// finish their headers, and refuses oversized headers: each open
// connection holds a goroutine and buffers, and nothing of babelcast needs
// large headers.
func TestHTTPServerLimits(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Config: func(c *app.Config) {
		c.Roles, c.IdleTimeout, c.ReadHeaderTimeout = []string{app.RoleAPI}, 300*time.Millisecond, 300*time.Millisecond
	}})
	a := s.App()
	// closedAfter sends request on a connection of its own and says
	// whether the server closes it within 5 s.
	closedAfter := func(request string) bool {
		c, err := net.Dial("tcp", a.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, request)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, c)
		return err == nil // EOF: the server closed it
	}
	// Idle after a request.
	if !closedAfter("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") {
		t.Error("an idle keep-alive connection was not closed")
	}
	// Headers that never end.
	if !closedAfter("GET /healthz HTTP/1.1\r\nHost: x\r\n") {
		t.Error("a connection whose headers never end was not closed")
	}
	// Oversized headers.
	req, _ := http.NewRequest("GET", a.URL()+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 100<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB of headers: %d, want 431", resp.StatusCode)
	}
}
