// Package service runs the whole babelcast service in-process for a test:
// app.Start with an embedded NATS in a temporary directory, on a free
// loopback port, with the openai engine pointed at the fake Realtime
// server when the test asks for one. It is test/harness's part that
// imports the roles (through internal/app), so the roles' own tests cannot
// use it; everyone else does.
package service

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
)

// AdminToken is the admin token of every service a test starts.
const AdminToken = "adm_test_token"

// Linger is how long a session outlives its speaker or last listener in a
// test's service: short, so tests of it wait little.
const Linger = 3 * time.Second

// Options say what to run.
type Options struct {
	// Fake, when not nil, starts the fake Realtime server with these
	// options and points the openai engine at it.
	Fake *fakerealtime.Options
	// Config adjusts the configuration before the start (roles, engine,
	// node name…).
	Config func(*app.Config)
}

// Service is babelcast running in the test's process.
type Service struct {
	t    testing.TB
	cfg  app.Config
	Fake *fakerealtime.Server // nil without Options.Fake
	Logs *harness.Logs        // everything the service logged
	API  *harness.API         // the organizer API, as admin

	mu  sync.Mutex
	app *app.App
}

// Start starts the service and stops it at the end of the test, failing
// the test if it does not stop cleanly or if a secret reached its log. The
// log's last lines are shown when the test fails; BABELCAST_E2E_LOGS=dir
// keeps every test's whole log there.
func Start(t testing.TB, o Options) *Service {
	t.Helper()
	s := &Service{t: t, Logs: &harness.Logs{}}
	s.cfg = app.Config{
		Addr:       "127.0.0.1:0",
		DataDir:    t.TempDir(),
		AdminToken: AdminToken,
		Linger:     Linger,
		Log:        s.Logs.Logger(),
	}
	if o.Fake != nil {
		s.Fake = fakerealtime.New(t, *o.Fake)
		s.cfg.Engine, s.cfg.OpenAIKey, s.cfg.RealtimeURL = "openai", s.Fake.APIKey(), s.Fake.URL()
	}
	if o.Config != nil {
		o.Config(&s.cfg)
	}
	a, err := app.Start(context.Background(), s.cfg)
	if err != nil {
		t.Fatalf("start babelcast: %v", err)
	}
	s.app = a
	s.cfg.Addr = a.Addr() // a restart comes back on the same address
	s.API = &harness.API{T: t, URL: s.URL(), Token: AdminToken}
	t.Cleanup(func() {
		s.Stop()
		out := s.Logs.String()
		for _, secret := range []string{s.cfg.OpenAIKey, AdminToken} {
			if secret != "" && strings.Contains(out, secret) {
				t.Error("a secret reached the service log")
			}
		}
		if t.Failed() {
			t.Logf("service log (last lines):\n%s", harness.Tail(out, 80))
		}
		if dir := os.Getenv("BABELCAST_E2E_LOGS"); dir != "" {
			name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + ".log"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(out), 0o644); err != nil {
				t.Logf("keep the service log: %v", err)
			}
		}
	})
	return s
}

// URL is the service's base URL, the same across restarts.
func (s *Service) URL() string { return "http://" + s.cfg.Addr }

// WS is the WebSocket URL of path on the service.
func (s *Service) WS(path string) string { return "ws://" + s.cfg.Addr + path }

// App is the running process (nil while stopped).
func (s *Service) App() *app.App {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.app
}

// Stop shuts the process down (closing listeners and the speaker with
// 1001), failing the test if it does not stop cleanly within 20 s. It does
// nothing when the process is stopped already.
func (s *Service) Stop() {
	s.mu.Lock()
	a := s.app
	s.app = nil
	s.mu.Unlock()
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		s.t.Errorf("shutdown: %v", err)
	}
}

// Restart stops the process and starts a new one on the same address and
// data directory.
func (s *Service) Restart() { s.t.Helper(); s.RestartWith(nil) }

// RestartWith restarts the process with its configuration changed by
// change (nil: the same).
func (s *Service) RestartWith(change func(*app.Config)) {
	s.t.Helper()
	s.Stop()
	if change != nil {
		change(&s.cfg)
	}
	a, err := app.Start(context.Background(), s.cfg)
	if err != nil {
		s.t.Fatalf("restart babelcast: %v", err)
	}
	s.mu.Lock()
	s.app = a
	s.mu.Unlock()
}
