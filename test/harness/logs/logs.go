// Package logs is a goroutine-safe log sink for tests: what a service or a
// server process under test logs, for a test to search and for a failing
// test to show. It imports nothing of babelcast, so every test can use it,
// the bus's own (which package harness, importing the bus, cannot serve)
// and test/natscluster's included.
package logs

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
)

// Sink collects what is written to it; the zero value is ready.
type Sink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Logger logs everything, debug included, as text into s.
func (s *Sink) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Tail returns the last lines of s.
func Tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
