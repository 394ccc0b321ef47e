package booth

import (
	"testing"
	"time"
)

func TestTrackerChoosesTheInterpreterFromTheirFirstWord(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tr := NewTracker(SilenceLimit)
	if tr.Human(t0) {
		t.Fatal("nobody on air, yet human")
	}
	// expect gives the tracker a frame at d, with speech or without, and
	// checks who has the channel at then.
	expect := func(speech bool, d, then time.Duration, human bool, why string) {
		t.Helper()
		tr.Frame(speech, 0, false, at(d))
		if tr.Human(at(then)) != human {
			t.Fatal(why)
		}
	}
	expect(false, 100*time.Millisecond, 150*time.Millisecond, false, "on air but silent since the AI took over: must wait for the first word")
	expect(true, 200*time.Millisecond, 250*time.Millisecond, true, "first word on air, still AI")
	// Silent while the floor speaks: human until the limit, then the AI.
	for d := 300 * time.Millisecond; d < 6*time.Second; d += 100 * time.Millisecond {
		tr.Frame(false, 0, false, at(d))
		tr.Floor(at(d))
		want := d-300*time.Millisecond < SilenceLimit // silent since the floor began, at 300 ms
		if got := tr.Human(at(d)); got != want {
			t.Fatalf("at %v: human %v, want %v", d, got, want)
		}
	}
	// The floor stops: still the AI until the interpreter speaks.
	expect(false, 9*time.Second, 9*time.Second, false, "the AI took over and the interpreter said nothing yet")
	expect(true, 9100*time.Millisecond, 9100*time.Millisecond, true, "the interpreter's next word must bring them back")
	// Silent while nobody speaks on the floor: stays human.
	tr.Frame(false, 0, false, at(30*time.Second))
	tr.Frame(true, 0, false, at(30*time.Second))
	expect(false, 39*time.Second, 39*time.Second, true, "a silent interpreter while the floor is silent lost the channel")
	tr.Off()
	if tr.Human(at(39100 * time.Millisecond)) {
		t.Fatal("off air, still human")
	}
}

func TestTrackerStaleBoothIsEmpty(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	tr := NewTracker(SilenceLimit)
	tr.Frame(true, 0, false, t0)
	if !tr.Human(t0) {
		t.Fatal("speaking on air, not human")
	}
	if tr.Human(t0.Add(Stale)) {
		t.Fatal("no frame for Stale: the booth must count as empty")
	}
}

func TestTrackerStartingMidTalkKnowsTheLastWord(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	tr := NewTracker(SilenceLimit)
	tr.Human(t0) // nothing yet: the AI
	tr.Frame(false, 500*time.Millisecond, true, t0.Add(100*time.Millisecond))
	if !tr.Human(t0.Add(100 * time.Millisecond)) {
		t.Fatal("the interpreter spoke 0.5 s before this tracker's first frame: theirs is the voice")
	}
	fresh := NewTracker(SilenceLimit)
	fresh.Frame(false, 0, false, t0)
	if fresh.Human(t0) {
		t.Fatal("on air without a word yet: still the AI")
	}
}
