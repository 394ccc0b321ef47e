package client

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A recording named for a format it will not be (es.mp3) is refused before
// anything is written or connected: it would be a WAV under another name.
func TestListenRefusesAnOutputItCannotWrite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "es.mp3")
	err := Listen(context.Background(), ListenOptions{Server: "http://127.0.0.1:1", Room: "keynote", Lang: "es", OutPath: path,
		Duration: 300 * time.Millisecond}) // bounds a recording that should not start
	if err == nil || !strings.Contains(err.Error(), ".ogg (Ogg/Opus) or .wav") {
		t.Fatalf("es.mp3: %v, want a refusal naming .ogg and .wav", err)
	}
	if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
		t.Errorf("es.mp3 was created: %v", statErr)
	}
}
