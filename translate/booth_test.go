package translate

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	th "github.com/babelcast/babelcast/test/harness"
)

// countingSession counts the audio appended to it.
type countingSession struct{ bytes atomic.Int64 }

func (s *countingSession) Append(pcm []byte, _ time.Time) error {
	s.bytes.Add(int64(len(pcm)))
	return nil
}
func (s *countingSession) Close(context.Context) error { return nil }
func (s *countingSession) Done() <-chan struct{}       { return nil }
func (s *countingSession) Err() error                  { return nil }
func (s *countingSession) Kind() string                { return "counting" }

// TestInputHeldBackWhileAnInterpreterCovers: the floor speaks English
// into a Spanish channel; while its booth's interpreter is on air and
// speaking the model is sent nothing; when the interpreter hands over, it
// gets the floor's last seconds (the pre-roll) and what follows.
func TestInputHeldBackWhileAnInterpreterCovers(t *testing.T) {
	t.Parallel()
	in := newInput("es", "en", nil, &attribution{})
	sess := &countingSession{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go in.run(ctx, sess, func(error) {})
	speech := tone(3000, 100*time.Millisecond)
	talk := func(d time.Duration, interpreter bool) {
		end := time.Now().Add(d)
		for now := time.Now(); now.Before(end); now = time.Now() {
			in.push(audio.Frame{PCM: speech, Captured: now, Mic: "main", Lang: "en", Speech: true}, now)
			if interpreter {
				in.pushBooth(audio.Frame{PCM: speech, Speech: true}, 0, true, now)
			}
			time.Sleep(100 * time.Millisecond) // a live mic's pace
		}
	}
	talk(2*time.Second, true)
	if n := sess.bytes.Load(); n != 0 {
		t.Fatalf("the model was sent %v while the interpreter spoke", audio.BytesDuration(int(n)))
	}
	in.pushBooth(audio.Frame{}, 0, false, time.Now()) // hand-over
	talk(500*time.Millisecond, false)
	th.WaitFor(t, 2*time.Second, "the pre-roll and the floor sent", func() bool {
		return audio.BytesDuration(int(sess.bytes.Load())) >= 2*time.Second
	})
}
