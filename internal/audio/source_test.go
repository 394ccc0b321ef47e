package audio

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func readSource(t *testing.T, s *Source) []int16 {
	t.Helper()
	var out []int16
	buf := make([]int16, 1000)
	for {
		n, err := s.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenWAVStereo48k(t *testing.T) {
	// Left 1 kHz, right silence: the downmix halves it.
	mono := tone(1000, 48000, 0.5, 20000)
	st := make([]int16, 0, 2*len(mono))
	for _, v := range mono {
		st = append(st, v, 0)
	}
	path := filepath.Join(t.TempDir(), "in.wav")
	os.WriteFile(path, wavFile(1, 2, 48000, 16, Bytes(st), true, 1), 0o644)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.InputRate() != 48000 || s.InputChannels() != 2 {
		t.Errorf("input %d Hz %d ch", s.InputRate(), s.InputChannels())
	}
	out := readSource(t, s)
	if len(out) != 12000 {
		t.Fatalf("%d samples, want 12000", len(out))
	}
	if a := goertzel(middle(out, 24000), 1000, 24000); math.Abs(a-10000) > 100 {
		t.Errorf("1 kHz amplitude %.0f, want 10000", a)
	}
}

func TestOpenMP3(t *testing.T) {
	s, err := Open("testdata/tone1k-44100-stereo.mp3")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.InputRate() != 44100 || !strings.HasPrefix(s.Format(), "mp3") {
		t.Errorf("format %q rate %d", s.Format(), s.InputRate())
	}
	out := readSource(t, s)
	// 1 s plus the encoder's delay and padding (at most a couple of frames).
	if len(out) < 24000 || len(out) > 26500 {
		t.Fatalf("%d samples, want about 24000", len(out))
	}
	if a := goertzel(out[4800:19200], 1000, 24000); math.Abs(a-16384)/16384 > 0.1 {
		t.Errorf("1 kHz amplitude %.0f, want about 16384", a)
	}
}

func TestRawSource(t *testing.T) {
	in := tone(1000, 16000, 0.5, 10000)
	// One byte at a time: odd reads must not misalign samples.
	s, err := NewRawSource(iotest.OneByteReader(bytes.NewReader(Bytes(in))), 16000)
	if err != nil {
		t.Fatal(err)
	}
	out := readSource(t, s)
	if len(out) != 12000 {
		t.Fatalf("%d samples, want 12000", len(out))
	}
	if a := goertzel(middle(out, 24000), 1000, 24000); math.Abs(a-10000) > 100 {
		t.Errorf("1 kHz amplitude %.0f, want 10000", a)
	}
	if _, err := NewRawSource(bytes.NewReader(nil), 4000); err == nil {
		t.Error("4 kHz accepted")
	}
	// 24 kHz raw passes through untouched.
	s, _ = NewRawSource(bytes.NewReader(Bytes([]int16{5, -5, 7})), Rate)
	if got := readSource(t, s); len(got) != 3 || got[1] != -5 {
		t.Errorf("passthrough %v", got)
	}
}

func TestSourceRejectsUnknown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(path, []byte("just some text, certainly not audio"), 0o644)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "unrecognised audio format") {
		t.Errorf("text file: %v", err)
	}
	os.WriteFile(path, nil, 0o644)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.wav")); err == nil {
		t.Error("missing file opened")
	}
}
