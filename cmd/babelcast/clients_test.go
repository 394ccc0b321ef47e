package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestClientFlags: every client command takes --server (with a default)
// and --room, and prints its own usage before the flags.
func TestClientFlags(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	fs, server, roomID := clientFlags("listen", "Usage: babelcast listen\n", &stderr)
	if err := fs.Parse([]string{"--room", "keynote"}); err != nil {
		t.Fatal(err)
	}
	if *server != "http://localhost:8080" || *roomID != "keynote" {
		t.Errorf("server %q, room %q", *server, *roomID)
	}
	fs.Usage()
	if u := stderr.String(); !strings.HasPrefix(u, "Usage: babelcast listen\n") || !strings.Contains(u, "-server") {
		t.Errorf("usage: %q", u)
	}
}
