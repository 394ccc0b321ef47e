package fanout

import (
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/wire"
)

func testListener(frames int, audio, slowAfter time.Duration) *listener {
	s := &Server{o: Options{QueueFrames: frames, QueueAudio: audio, SlowAfter: slowAfter}}
	return newListener(s, "r", "es", false, transportWS)
}

func audioFrame(seq byte, n int) *frame {
	b := make([]byte, n)
	b[0] = seq
	return &frame{data: b, audio: true}
}

func drain(l *listener) (audio []byte, text int) {
	for {
		f, code, _ := l.next()
		if code != 0 || f == nil {
			return audio, text
		}
		if f.audio {
			audio = append(audio, f.data[0])
		} else {
			text++
		}
	}
}

func TestQueueDropsOldestAudioByFrames(t *testing.T) {
	l := testListener(5, time.Hour, time.Hour)
	now := time.Now()
	for i := range 12 { // grows 4 → 5 on the way, in order
		l.pushAudio(audioFrame(byte(i), 2), now)
	}
	got, _ := drain(l)
	if string(got) != string([]byte{7, 8, 9, 10, 11}) {
		t.Errorf("queue kept %v, want the newest 5 (7..11)", got)
	}
	if l.droppedFrames() != 7 {
		t.Errorf("dropped %d, want 7", l.droppedFrames())
	}
}

func TestQueueDropsOldestAudioByDuration(t *testing.T) {
	// 100 ms of audio = 4800 bytes: room for two 2400-byte frames.
	l := testListener(100, 100*time.Millisecond, time.Hour)
	now := time.Now()
	for i := range 4 {
		l.pushAudio(audioFrame(byte(i), 2400), now)
	}
	if got, _ := drain(l); string(got) != string([]byte{2, 3}) {
		t.Errorf("queue kept %v, want the newest 100 ms (2, 3)", got)
	}
}

func TestQueueTextFirstAndNeverDroppedForAudio(t *testing.T) {
	l := testListener(2, time.Hour, time.Hour)
	now := time.Now()
	l.pushAudio(audioFrame(1, 2), now)
	l.pushText(textFrame(wire.State{Type: "state"}))
	for i := 2; i < 10; i++ {
		l.pushAudio(audioFrame(byte(i), 2), now)
	}
	f, _, _ := l.next()
	if f == nil || f.audio {
		t.Fatal("text message not written first")
	}
	if got, _ := drain(l); string(got) != string([]byte{8, 9}) {
		t.Errorf("audio %v, want 8, 9", got)
	}
}

func TestQueueSlowStreak(t *testing.T) {
	l := testListener(2, time.Hour, time.Second)
	t0 := time.Now()
	push := func(at time.Duration) { l.pushAudio(audioFrame(0, 2), t0.Add(at)) }
	push(0)
	push(0)
	push(0) // first drop: streak starts at 0
	push(900 * time.Millisecond)
	if _, code, _ := l.next(); code != 0 {
		t.Fatal("closed before SlowAfter")
	}
	drain(l) // caught up: the streak ends
	push(1000 * time.Millisecond)
	push(1000 * time.Millisecond)
	push(1100 * time.Millisecond) // a new streak starts here
	push(1900 * time.Millisecond)
	if _, code, _ := l.next(); code != 0 {
		t.Fatal("a listener that caught up in between was closed")
	}
	push(2100 * time.Millisecond)
	push(2100 * time.Millisecond)
	if _, code, reason := l.next(); code != wire.CloseTooSlow || reason != "too slow" {
		t.Fatalf("after dropping for SlowAfter: code %d %q, want 4408", code, reason)
	}
}

func TestQueueTooManyTextCloses(t *testing.T) {
	l := testListener(2, time.Hour, time.Hour)
	for range maxControl + 1 {
		l.pushText(textFrame(wire.State{Type: "state"}))
	}
	if _, code, _ := l.next(); code != wire.CloseTooSlow {
		t.Fatalf("code %d, want 4408 once text piles up", code)
	}
}
