package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseRoles(t *testing.T) {
	t.Parallel()
	got, err := ParseRoles("fanout, api,fanout")
	if err != nil || !slices.Equal(got, []string{"fanout", "api"}) {
		t.Fatalf("ParseRoles = %v, %v", got, err)
	}
	if all, _ := ParseRoles(""); !slices.Equal(all, AllRoles) {
		t.Fatalf("empty roles = %v, want all", all)
	}
	if _, err := ParseRoles("api,mixer"); err == nil || !strings.Contains(err.Error(), "mixer") {
		t.Fatalf("unknown role accepted: %v", err)
	}
}

func TestEngineDefault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		engine, key, want string
		fails             bool
	}{
		{"", "", "local", false},
		{"", "sk-x", "openai", false},
		{"local", "sk-x", "local", false},
		{"openai", "", "", true},
		{"whisper", "", "", true},
	} {
		c := Config{Engine: tc.engine, OpenAIKey: tc.key}
		got, err := c.engineName()
		if (err != nil) != tc.fails || got != tc.want {
			t.Errorf("engine %q key %q: got %q, %v", tc.engine, tc.key, got, err)
		}
	}
}

func TestAdminTokenGeneratedOnceAndKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tok, fresh, err := adminToken("", dir)
	if err != nil || !fresh || !strings.HasPrefix(tok, "adm_") {
		t.Fatalf("first start: %q fresh=%v err=%v", tok, fresh, err)
	}
	fi, err := os.Stat(filepath.Join(dir, adminTokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	again, fresh, err := adminToken("", dir)
	if err != nil || fresh || again != tok {
		t.Fatalf("second start: %q fresh=%v err=%v, want %q kept", again, fresh, err, tok)
	}
	set, fresh, _ := adminToken("from-env", dir)
	if set != "from-env" || fresh {
		t.Fatalf("configured token not used: %q", set)
	}
}
