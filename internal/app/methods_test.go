package app_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/test/harness/service"
)

// A method a path does not take is 405 with the API's error body and an
// Allow header naming the methods it does take, as HTTP requires of a 405.
func TestMethodNotAllowedSaysAllow(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Config: func(c *app.Config) {
		c.Roles = []string{app.RoleAPI}
	}})
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/api/v1/rooms/keynote", "GET, PATCH, DELETE"},
		{"DELETE", "/api/v1/rooms", "GET, POST"},
		{"POST", "/api/v1/rooms/keynote/public", "GET"},
		{"POST", "/healthz", "GET"},
	} {
		r := s.API.As(service.AdminToken).Do(c.method, c.path, "")
		if r.Status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 405", c.method, c.path, r.Status)
			continue
		}
		if got := r.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
		var b httperr.Body
		if err := json.Unmarshal(r.Body, &b); err != nil || b.Error.Code != "method_not_allowed" {
			t.Errorf("%s %s: body %s", c.method, c.path, r.Body)
		}
	}
}
