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
