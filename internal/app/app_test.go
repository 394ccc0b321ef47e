package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// startApp starts a process on a free loopback port with admin token
// adm_test, node n1 and a fresh data directory, and shuts it down (cleanly)
// at the end of the test.
func startApp(t *testing.T, cfg Config) *App {
	t.Helper()
	cfg.Addr, cfg.DataDir, cfg.AdminToken, cfg.Node = "127.0.0.1:0", t.TempDir(), "adm_test", "n1"
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return a
}

// Start returns a ready process: its translator has registered its engine,
// so the API checks a new room's languages from the first request on.
func TestStartReturnsWithTheEngineRegistered(t *testing.T) {
	a := startApp(t, Config{
		Roles:  []string{RoleTranslate, RoleAPI},
		Engine: "openai", OpenAIKey: "sk-test", RealtimeURL: "ws://127.0.0.1:1/v1/realtime",
	})
	for _, path := range []string{"/readyz", "/api/v1/engines"} {
		req, _ := http.NewRequest("GET", a.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer adm_test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Status  string `json:"status"`
			Engines []struct {
				Node   string `json:"node"`
				Engine string `json:"engine"`
			} `json:"engines"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
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
	a := startApp(t, Config{Roles: []string{RoleAPI}, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	get := func(client, token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", a.URL()+"/api/v1/rooms", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
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
	if code := get("203.0.113.10", "adm_test"); code != http.StatusOK {
		t.Errorf("the organizer behind the same load balancer: %d, want 200", code)
	}
	if code := get("203.0.113.66", "adm_test"); code != http.StatusTooManyRequests {
		t.Errorf("the guesser with the right token while blocked: %d, want 429", code)
	}
}
