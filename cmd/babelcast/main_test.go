package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Flags beat the environment, which beats the YAML file.
func TestServeConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "babelcast.yaml")
	os.WriteFile(file, []byte("addr: \":7000\"\nroles: fanout\nlinger: 5s\nrealtime-model: from-file\nmax-sessions: 3\n"), 0o600)
	t.Setenv("BABELCAST_ROLES", "api,translate")
	t.Setenv("BABELCAST_REALTIME_URL", "wss://example.test/v1/realtime")
	t.Setenv("OPENAI_API_KEY", "sk-test")
	cfg, err := serveConfig([]string{"--config", file, "--addr", ":9000"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":9000" {
		t.Errorf("addr %q: the flag should win", cfg.Addr)
	}
	if !slices.Equal(cfg.Roles, []string{"api", "translate"}) {
		t.Errorf("roles %v: the environment should beat the file", cfg.Roles)
	}
	if cfg.RealtimeURL != "wss://example.test/v1/realtime" || cfg.RealtimeModel != "from-file" {
		t.Errorf("realtime %q %q", cfg.RealtimeURL, cfg.RealtimeModel)
	}
	if cfg.Linger != 5*time.Second || cfg.MaxSessions != 3 || cfg.OpenAIKey != "sk-test" {
		t.Errorf("linger %v max %d key set %v", cfg.Linger, cfg.MaxSessions, cfg.OpenAIKey != "")
	}
}

func TestServeConfigRejects(t *testing.T) {
	for _, args := range [][]string{
		{"--roles", "api,mixer"},
		{"--log-level", "loud"},
		{"--linger", "soon"},
		{"stray"},
	} {
		if _, err := serveConfig(args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestHelpAndUnknownCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "babelcast speak") {
		t.Errorf("help: %d %q", code, out.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"help", "listen"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "--lang") {
		t.Errorf("help listen: %d %q", code, errOut.String())
	}
	if code := run(context.Background(), []string{"dance"}, &out, &errOut); code != 2 {
		t.Errorf("unknown command exit %d, want 2", code)
	}
	if code := run(context.Background(), []string{"speak", "--room", "r"}, &out, &errOut); code != 2 {
		t.Errorf("speak without key and file: exit %d, want 2", code)
	}
	out.Reset()
	if code := run(context.Background(), []string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "babelcast ") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

// babelcast nkey makes a key babelcast can join NATS with, and prints the
// public key for the server's configuration; it never overwrites a key.
func TestNKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "babelcast.nk")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"nkey", file}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	// Only the public key: one line, a valid user public key (a seed
	// starts "SU" and is no public key).
	if pub := strings.TrimSuffix(out.String(), "\n"); strings.Contains(pub, "\n") || !nkeys.IsValidPublicUserKey(pub) {
		t.Errorf("printed %q: want the public user key only", out.String())
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file: %v %v", fi, err)
	}
	opt, err := nats.NkeyOptionFromSeed(file)
	if err != nil || opt == nil {
		t.Fatalf("the seed is not one nats.go reads: %v", err)
	}
	if code := run(context.Background(), []string{"nkey", file}, &out, &errOut); code != 1 {
		t.Errorf("overwrite: exit %d", code)
	}
}

// The example configuration names every serve flag, and serve reads it.
func TestExampleConfigHasEveryFlag(t *testing.T) {
	const example = "../../configs/babelcast.yaml"
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	run(context.Background(), []string{"help", "serve"}, &out, &errOut)
	for _, line := range strings.Split(errOut.String(), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "-")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		if name == "config" {
			continue
		}
		if !strings.Contains(string(b), "\n"+name+":") {
			t.Errorf("--%s is not in %s", name, example)
		}
	}
	if _, err := serveConfig([]string{"--config", example}, &out, &errOut); err != nil {
		t.Errorf("serve cannot read %s: %v", example, err)
	}
}

// A key of the YAML file that is no flag is refused by name, a secret
// with where it goes instead, and every key of the documented example is
// read.
func TestServeConfigFileKeys(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ yaml, want string }{
		{"addr: \":7000\"\nlingr: 5s\n", `unknown key "lingr"`},
		{"admin-token: hunter2hunter2hunter2\n", "BABELCAST_ADMIN_TOKEN"},
		{"openai-api-key: sk-x\n", "OPENAI_API_KEY"},
		{"config: other.yaml\n", `unknown key "config"`},
	} {
		file := filepath.Join(dir, "c.yaml")
		os.WriteFile(file, []byte(c.yaml), 0o600)
		_, err := serveConfig([]string{"--config", file}, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error saying %s", c.yaml, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
	cfg, err := serveConfig([]string{"--config", "../../configs/babelcast.yaml"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("configs/babelcast.yaml: %v", err)
	}
	if cfg.Addr != ":8080" || cfg.Linger != 30*time.Second || cfg.MaxListeners != 20000 {
		t.Errorf("configs/babelcast.yaml read as %+v", cfg)
	}
}

// A BABELCAST_ variable that is no setting is named in a warning (never
// its value); settings, secrets and the clients' variables are not.
func TestServeWarnsOfUnknownEnv(t *testing.T) {
	t.Setenv("BABELCAST_ADRR", ":7000")
	t.Setenv("BABELCAST_LINGER", "5s")
	t.Setenv("BABELCAST_NATS_TLS_CA", "")
	t.Setenv("BABELCAST_ADMIN_TOKEN", "secret-token-secret-token")
	t.Setenv("BABELCAST_SPEAKER_KEY", "spk_x")
	var errOut bytes.Buffer
	cfg, err := serveConfig(nil, &bytes.Buffer{}, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Linger != 5*time.Second {
		t.Errorf("linger %v", cfg.Linger)
	}
	logs := errOut.String()
	if !strings.Contains(logs, "name=BABELCAST_ADRR") || strings.Count(logs, "environment variable ignored") != 1 {
		t.Errorf("warnings:\n%s", logs)
	}
	if strings.Contains(logs, ":7000") || strings.Contains(logs, "secret-token") {
		t.Errorf("a value in the log:\n%s", logs)
	}
}

// A wrong command line exits 2 and says what is wrong, after the usage
// (it showed only the usage).
func TestUsageErrorsSayWhat(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"speak", "--room", "keynote", "talk.mp3"}, "babelcast speak: --room, --key and one FILE (or -) are required"},
		{[]string{"listen", "--room", "keynote", "--lang", "es"}, "babelcast listen: --room, --lang and --out are required"},
		{[]string{"nkey"}, "babelcast nkey: one FILE"},
		{[]string{"serve", "stray"}, `unexpected arguments ["stray"]`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), c.args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr.String(), c.want)
		}
	}
}
