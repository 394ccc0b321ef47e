package local

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/babelcast/babelcast/internal/audio"
)

// libriVoxDir holds real human speech with reference transcripts, from
// Debian's pocketsphinx-testdata: five sentences of Sense and Sensibility
// read for LibriVox, 16 kHz mono.
const libriVoxDir = "/usr/share/pocketsphinx/test/data/librivox"

// testTools discovers the installed tools, failing (not skipping) with the
// install command when they are missing.
func testTools(t testing.TB) *tools {
	t.Helper()
	tl, err := discover(context.Background(), DefaultModelDir, DefaultApertiumDir)
	if err != nil {
		t.Fatalf("the local engine's tools are not installed: %v", err)
	}
	return tl
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// clip is one LibriVox recording with what was said.
type clip struct {
	id   string
	ref  string  // reference transcript, lower case
	rate int     // of the file
	pcm  []int16 // as recorded
}

var (
	clipsOnce sync.Once
	clips     []clip
	clipsErr  error
)

// libriVox loads the recordings in their order, failing the test (with the
// Debian package to install) when they are missing.
func libriVox(t testing.TB) []clip {
	t.Helper()
	clipsOnce.Do(func() { clips, clipsErr = loadLibriVox() })
	if clipsErr != nil {
		t.Fatalf("LibriVox test recordings: %v (install them with: apt-get install pocketsphinx-testdata)", clipsErr)
	}
	return clips
}

var transcriptLine = regexp.MustCompile(`^<s>\s*(.*?)\s*</s>\s*\((\S+)\)\s*$`)

func loadLibriVox() ([]clip, error) {
	f, err := os.Open(filepath.Join(libriVoxDir, "transcription"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []clip
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := transcriptLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		c := clip{id: m[2], ref: m[1]}
		if c.pcm, c.rate, err = readWAV(filepath.Join(libriVoxDir, c.id+".wav")); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no transcripts in " + libriVoxDir)
	}
	return out, nil
}

func readWAV(path string) ([]int16, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	r, err := audio.NewWAVReader(f)
	if err != nil {
		return nil, 0, err
	}
	if r.Format.Channels != 1 {
		return nil, 0, errors.New(path + ": not mono")
	}
	var out []int16
	buf := make([]int16, 4096)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return out, r.Format.SampleRate, nil
		}
		if err != nil {
			return nil, 0, err
		}
	}
}

// resampleAll converts a whole recording.
func resampleAll(s []int16, from, to int) []int16 {
	r := audio.NewResampler(from, to)
	return append(r.Process(s), r.Flush()...)
}

// words normalizes a transcript for scoring: lower case, letters and
// apostrophes only.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r == '\'' || r >= 'a' && r <= 'z' || r >= 0x80)
	})
}

// wordErrors is the word-level edit distance between a reference and a
// hypothesis: substitutions + deletions + insertions.
func wordErrors(ref, hyp []string) int {
	prev := make([]int, len(hyp)+1)
	cur := make([]int, len(hyp)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ref); i++ {
		cur[0] = i
		for j := 1; j <= len(hyp); j++ {
			sub := prev[j-1]
			if ref[i-1] != hyp[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(hyp)]
}

// wer is the word error rate of hyp against ref.
func wer(ref, hyp string) float64 {
	r := words(ref)
	if len(r) == 0 {
		return 0
	}
	return float64(wordErrors(r, words(hyp))) / float64(len(r))
}

func TestWER(t *testing.T) {
	cases := []struct {
		ref, hyp string
		want     float64
	}{
		{"he was not an ill disposed young man", "he was not an ill disposed young man", 0},
		{"he was not an ill disposed young man", "he was not an illness those young man", 2.0 / 8},
		{"a b c d", "a x c d e", 2.0 / 4},
		{"a b c d", "", 1},
		{"Had he, married?", "had he married", 0},
	}
	for _, c := range cases {
		if got := wer(c.ref, c.hyp); got != c.want {
			t.Errorf("wer(%q, %q) = %v, want %v", c.ref, c.hyp, got, c.want)
		}
	}
}
