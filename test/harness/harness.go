// Package harness is what babelcast's tests share to run the service and
// talk to it: an embedded NATS for a role under test (Bus), the organizer
// API as a client (API), waiting for a state reached over the network
// (WaitFor), a goroutine-safe log sink (Logs) and recordings of speech the
// fake model recognizes (SpeechWAV).
//
// It imports none of the role packages, so their own tests can use it; the
// whole service in-process, started with internal/app, is its subpackage
// harness/service.
package harness

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness/logs"
)

// Logs is a goroutine-safe log sink: what a service under test logs, for
// a test to search and for a failing test to show.
type Logs = logs.Sink

// Tail returns the last lines of s.
func Tail(s string, lines int) string { return logs.Tail(s, lines) }

// WaitFor polls cond until it holds, and fails the test when timeout
// passes first. It is for states reached over the network (an API's
// status, what a listener has received) that have no event to await.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Bus opens an embedded NATS server with JetStream in a temporary
// directory and the buckets every role uses, closed at the end of the
// test: what a role needs to run on its own.
func Bus(t testing.TB) *bus.Bus {
	t.Helper()
	b, err := bus.Open(context.Background(), bus.Options{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// SpeechWAV writes a WAV file of speech the fake model recognizes as lang:
// bursts of 1.5 s with 0.9 s pauses between them (so turns end and
// captions come line by line), at 48 kHz as a microphone or a recording
// gives, with channels identical channels (2: the server must downmix).
// It returns the file's path, in a temporary directory.
func SpeechWAV(t testing.TB, lang string, bursts, channels int) string {
	t.Helper()
	var mono []int16
	for range bursts {
		mono = append(mono, audio.Samples(fakerealtime.Speech(lang, 1500*time.Millisecond))...)
		mono = append(mono, audio.Samples(fakerealtime.Silence(900*time.Millisecond))...)
	}
	r := audio.NewResampler(fakerealtime.SampleRate, 48000)
	up := append(r.Process(mono), r.Flush()...)
	samples := make([]int16, 0, channels*len(up))
	for _, s := range up {
		for range channels {
			samples = append(samples, s)
		}
	}
	path := filepath.Join(t.TempDir(), "speech-"+lang+".wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := audio.NewWAVWriter(f, 48000, channels) // a file: the header gets the real sizes
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSamples(samples); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
