package local

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startRecognizer starts a recognizer with its decoder running, and closes
// it at the end of the test. Its results come on the returned channel.
func startRecognizer(t testing.TB) (*recognizer, chan recResult) {
	t.Helper()
	results := make(chan recResult, 16)
	abort := make(chan struct{})
	r, err := newRecognizer(testLog(t), testTools(t), results, abort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.close(context.Background())
		close(abort)
	})
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	return r, results
}

// recognizeClips streams each recording as one turn to a single decoder,
// as a session does, and returns the hypotheses in order.
func recognizeClips(t testing.TB, cs []clip) (hyps []string, elapsed time.Duration) {
	t.Helper()
	r, results := startRecognizer(t)
	ctx := context.Background()
	start := time.Now()
	for i, c := range cs {
		pcm := c.pcm
		if c.rate != 16000 {
			pcm = resampleAll(pcm, c.rate, 16000)
		}
		u, err := r.begin(ctx, uint64(i))
		if err != nil {
			t.Fatalf("begin turn %d: %v", i, err)
		}
		for off := 0; off < len(pcm); off += 1600 {
			if err := u.write(pcm[off:min(off+1600, len(pcm))]); err != nil {
				t.Fatalf("turn %d: %v", i, err)
			}
		}
		u.end(ctx)
		res := <-results
		if res.turn != uint64(i) || res.lost != nil {
			t.Fatalf("turn %d: got result %+v", i, res)
		}
		if i == 0 {
			start = time.Now() // the first turn waited for the model to load
		}
		hyps = append(hyps, res.text)
	}
	return hyps, time.Since(start)
}

// TestRecognizerLibriVox measures the recognizer's word error rate on real
// speech against the reference transcripts.
func TestRecognizerLibriVox(t *testing.T) {
	cs := libriVox(t)
	hyps, elapsed := recognizeClips(t, cs)
	var errs, total int
	var dur time.Duration
	for i, c := range cs {
		e := wordErrors(words(c.ref), words(hyps[i]))
		errs += e
		total += len(words(c.ref))
		if i > 0 {
			dur += time.Duration(len(c.pcm)) * time.Second / time.Duration(c.rate)
		}
		t.Logf("%s: WER %.0f%%\n  ref: %s\n  hyp: %s", c.id, 100*float64(e)/float64(len(words(c.ref))), c.ref, hyps[i])
	}
	w := float64(errs) / float64(total)
	t.Logf("recognizer WER on LibriVox: %.1f%% (%d errors / %d words); real-time factor %.2f (turns 2..%d, %v of audio in %v)",
		100*w, errs, total, elapsed.Seconds()/dur.Seconds(), len(cs), dur.Round(time.Millisecond), elapsed.Round(time.Millisecond))
	if base, err := batchBaseline(cs); err == nil {
		t.Logf("for comparison, PocketSphinx's own batch output (test-lm.match): WER %.1f%%", 100*base)
	}
	if w > maxLibriVoxWER {
		t.Errorf("recognizer WER %.1f%% is above %.0f%%", 100*w, 100*maxLibriVoxWER)
	}
}

// maxLibriVoxWER bounds the recognizer's word error rate on the LibriVox
// sentences: PocketSphinx's own batch decoder gets about 20% on them
// (test-lm.match), streaming with live cepstral normalization a bit more.
const maxLibriVoxWER = 0.35

// batchBaseline scores the hypotheses Debian ships with the recordings
// (pocketsphinx_batch on whole files, batch cepstral normalization).
func batchBaseline(cs []clip) (float64, error) {
	b, err := os.ReadFile(filepath.Join(libriVoxDir, "test-lm.match"))
	if err != nil {
		return 0, err
	}
	hyp := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := batchMatch.FindStringSubmatch(line); m != nil {
			hyp[m[2]] = m[1]
		}
	}
	var errs, total int
	for _, c := range cs {
		errs += wordErrors(words(c.ref), words(hyp[c.id]))
		total += len(words(c.ref))
	}
	return float64(errs) / float64(total), nil
}

var batchMatch = regexp.MustCompile(`^(.*?)\s*\((\S+)\s+-?\d+\)\s*$`)

// TestRecognizerTurnAfterUnnoticedDeath: the decoder dies between turns
// and the next turn comes before the process is reaped. The turn goes to a
// fresh decoder instead of being lost.
func TestRecognizerTurnAfterUnnoticedDeath(t *testing.T) {
	cs := libriVox(t)
	r, results := startRecognizer(t)
	ctx := context.Background()
	for i := range 3 {
		r.mu.Lock()
		old := r.proc
		killGroup(old.cmd) // and the turn follows at once
		r.mu.Unlock()
		u, err := r.begin(ctx, uint64(i))
		if err != nil {
			t.Fatalf("turn %d after the decoder died: %v", i, err)
		}
		if u.p == old {
			t.Fatalf("turn %d went to the dead decoder", i)
		}
		pcm := resampleAll(cs[1].pcm, cs[1].rate, 16000)
		for off := 0; off < len(pcm); off += 1600 {
			if err := u.write(pcm[off:min(off+1600, len(pcm))]); err != nil {
				t.Fatalf("turn %d: %v", i, err)
			}
		}
		u.end(ctx)
		if res := <-results; res.turn != uint64(i) || res.lost != nil || !strings.Contains(res.text, "young man") {
			t.Fatalf("turn %d: %+v, want %q recognized", i, res, cs[1].ref)
		}
	}
}
