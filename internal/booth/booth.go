// Package booth decides whose voice a channel with a human interpreters'
// booth carries: the interpreter on air, or the AI. Ingest publishes the
// on-air interpreter's audio (subject.Booth) and says at once when nobody
// is on air any more (an empty message: hand-over, mute, hang-up); fanout
// picks what listeners hear with a Tracker, and the translator feeds its
// model only where its own Tracker says the AI may be needed, so a channel
// an interpreter covers costs next to nothing.
package booth

import (
	"sync"
	"time"
)

// Voices, as listeners' state messages and audio headers name them.
const (
	Human = "human"
	AI    = "ai"
)

const (
	// SilenceLimit is how long the interpreter on air may be silent while
	// the floor speaks before listeners hear the AI (the contract's 4 s).
	SilenceLimit = 4 * time.Second
	// FeedLimit is the translator's: it starts feeding its model this
	// early, so the AI has something to say when SilenceLimit passes.
	FeedLimit = 2 * time.Second
	// Stale is how long a booth may send nothing before it counts as
	// empty: its node died, or its network stalled. Hand-over, mute and
	// hang-up say so at once.
	Stale = time.Second
	// floorHold joins floor speech with pauses shorter than this into one
	// stretch of speech.
	floorHold = 2 * time.Second
)

// Tracker follows one channel's booth and floor and chooses its voice.
// The interpreter's voice is chosen from their first word on air; the AI
// when nobody is on air, or when the one on air has been silent for limit
// while the floor speaks, and then until the interpreter's next word. It
// is safe for concurrent use.
type Tracker struct {
	limit time.Duration

	mu        sync.Mutex
	onAir     bool
	lastFrame time.Time // the booth's last frame
	lastVoice time.Time // its last frame with speech
	floorFrom time.Time // start of the floor's current stretch of speech
	floorLast time.Time // the floor's last speech
	human     bool      // the voice chosen last
	aiSince   time.Time // when the AI was chosen last
}

// NewTracker follows a booth with the given silence limit (SilenceLimit
// for what listeners hear, FeedLimit for what a model is fed).
func NewTracker(limit time.Duration) *Tracker { return &Tracker{limit: limit} }

// Frame notes a frame of the interpreter on air, with speech or not, and
// (spoke) how long they have been silent, when the booth says so: a
// tracker that starts mid-talk then knows their last word.
func (t *Tracker) Frame(speech bool, silent time.Duration, spoke bool, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastFrame.IsZero() {
		// The first frame this tracker sees: the interpreter may have been
		// on air for long, and their last word (spoke) counts.
		t.aiSince = time.Time{}
	}
	t.onAir, t.lastFrame = true, now
	if last := now.Add(-silent); spoke && last.After(t.lastVoice) {
		t.lastVoice = last
	}
	if speech {
		t.lastVoice = now
	}
}

// Off notes that nobody is on air any more.
func (t *Tracker) Off() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onAir = false
}

// Floor notes speech on the floor that the channel interprets.
func (t *Tracker) Floor(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.floorLast.IsZero() || now.Sub(t.floorLast) > floorHold {
		t.floorFrom = now
	}
	t.floorLast = now
}

// Human reports whether the interpreter's voice is the channel's at now.
func (t *Tracker) Human(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.onAir || now.Sub(t.lastFrame) >= Stale {
		return t.chooseAI(now)
	}
	if !t.human {
		if !t.lastVoice.After(t.aiSince) {
			return false // back on air: from their next word
		}
		t.human = true
	}
	if !t.floorLast.IsZero() && now.Sub(t.floorLast) < floorHold {
		from := t.lastVoice
		if t.floorFrom.After(from) {
			from = t.floorFrom
		}
		if now.Sub(from) >= t.limit {
			return t.chooseAI(now)
		}
	}
	return true
}

func (t *Tracker) chooseAI(now time.Time) bool {
	if t.human || t.aiSince.IsZero() {
		t.aiSince = now
	}
	t.human = false
	return false
}

// Voice is Human(now) as a voice name.
func (t *Tracker) Voice(now time.Time) string {
	if t.Human(now) {
		return Human
	}
	return AI
}
