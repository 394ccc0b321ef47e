package app_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/test/harness/service"
)

// Every log line names its role once: a key twice on a line is two
// "role" fields in a JSON log, which log pipelines reject or misread.
func TestLogLinesNameTheirRoleOnce(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Config: func(c *app.Config) {
		c.Roles = []string{app.RoleAPI, app.RoleFanout}
	}})
	s.API.CreateRoom(`{"id":"locked","source_language":"en","passcode":"hush"}`)
	// A wrong passcode is logged by the fan-out role.
	if r := s.API.As("").Do("GET", "/api/v1/rooms/locked/audio/en.wav?passcode=nope", ""); r.Status != http.StatusForbidden {
		t.Fatalf("wrong passcode: %d, want 403", r.Status)
	}
	logged := false
	for _, line := range strings.Split(s.Logs.String(), "\n") {
		if strings.Contains(line, "role=fanout") {
			logged = true
		}
		if n := strings.Count(line, " role="); n > 1 {
			t.Errorf("%d role fields: %s", n, line)
		}
	}
	if !logged {
		t.Error("no line of the fan-out role was logged")
	}
}
