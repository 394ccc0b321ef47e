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
