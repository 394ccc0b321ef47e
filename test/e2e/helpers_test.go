package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/client"
	"github.com/babelcast/babelcast/internal/wire"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// heard is one audio message as a listener received it.
type heard struct {
	at    time.Time
	bytes int
}

// delayAt is one `delay` message: the server's lag figure when received.
type delayAt struct {
	at  time.Time
	lag time.Duration
}

// recording collects what one listener receives.
type recording struct {
	mu       sync.Mutex
	pcm      []byte
	frames   []heard
	captions []string          // final captions in arrival order (a line may be finalized twice)
	finals   []wire.Caption    // the same, whole
	lines    map[uint64]string // caption segment → its last text
	final    map[uint64]bool
	delays   []delayAt
	states   []string
}

// locked is f's result, computed under r's lock.
func locked[T any](r *recording, f func() T) T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return f()
}

func (r *recording) audio() []byte { return locked(r, func() []byte { return bytes.Clone(r.pcm) }) }

func (r *recording) finalCaptions() []string {
	return locked(r, func() []string { return slices.Clone(r.captions) })
}

// finalLines are the caption lines that became final, each once (a line
// may be finalized twice, the second time with its full stop), in the
// order of their segments: what a reader of the captions ends up seeing.
func (r *recording) finalLines() []wire.Caption {
	return locked(r, func() []wire.Caption {
		last := map[uint64]wire.Caption{}
		for _, c := range r.finals {
			last[c.Segment] = c
		}
		segs := slices.Sorted(maps.Keys(last))
		out := make([]wire.Caption, len(segs))
		for i, seg := range segs {
			out[i] = last[seg]
		}
		return out
	})
}

func (r *recording) heardFrames() []heard {
	return locked(r, func() []heard { return slices.Clone(r.frames) })
}

func (r *recording) delayFigures() []delayAt {
	return locked(r, func() []delayAt { return slices.Clone(r.delays) })
}

func (r *recording) channelStates() []string {
	return locked(r, func() []string { return slices.Clone(r.states) })
}

// lineTexts is the last text of every caption line that became final, in
// segment order: what a reader of the captions ends up seeing.
func (r *recording) lineTexts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var segs []uint64
	for seg := range r.lines {
		if r.final[seg] {
			segs = append(segs, seg)
		}
	}
	slices.Sort(segs)
	out := make([]string, len(segs))
	for i, seg := range segs {
		out[i] = r.lines[seg]
	}
	return out
}

// firstAudioAfter is when the first audio carrying lang's tone arrived
// after t0 (zero if none did).
func (r *recording) firstAudioAfter(t0 time.Time, lang string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	off := 0
	for _, f := range r.frames {
		b := r.pcm[off : off+f.bytes]
		off += f.bytes
		if f.at.After(t0) && fakerealtime.RMS(b) > 0.01 && fakerealtime.Goertzel(b, fakerealtime.ToneHz(lang)) > 0.5 {
			return f.at
		}
	}
	return time.Time{}
}

// audience is listen clients recording channels of one room, until stop
// (or the end of the test).
type audience struct {
	t      *testing.T
	s      *service.Service
	room   string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newAudience(t *testing.T, s *service.Service, roomID string) *audience {
	ctx, cancel := context.WithCancel(context.Background())
	a := &audience{t: t, s: s, room: roomID, ctx: ctx, cancel: cancel}
	t.Cleanup(a.stop)
	return a
}

// listen records channel lang with the listen client, and into the WAV
// file out unless out is "".
func (a *audience) listen(lang, out string) *recording {
	return a.listenWith(client.ListenOptions{Lang: lang, OutPath: out})
}

// listenWith records the channel o names (with o's other options).
func (a *audience) listenWith(o client.ListenOptions) *recording {
	rec := &recording{lines: map[uint64]string{}, final: map[uint64]bool{}}
	lang := o.Lang
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		err := client.Listen(a.ctx, client.ListenOptions{
			Server: a.s.URL(), Room: a.room, Lang: lang, OutPath: o.OutPath, NoPassthrough: o.NoPassthrough,
			OnAudio: func(pcm []byte) {
				now := time.Now()
				rec.mu.Lock()
				rec.pcm = append(rec.pcm, pcm...)
				rec.frames = append(rec.frames, heard{at: now, bytes: len(pcm)})
				rec.mu.Unlock()
			},
			OnMessage: func(typ string, raw []byte) { rec.message(typ, raw, time.Now()) },
		})
		if err != nil {
			a.t.Errorf("listen %s: %v", lang, err)
		}
	}()
	return rec
}

// await waits until the room's status counts one listener of each of
// langs (the source language's are the floor's).
func (a *audience) await(langs ...string) {
	a.t.Helper()
	harness.WaitFor(a.t, 10*time.Second, "listeners of "+strings.Join(langs, ", "), func() bool {
		st := a.s.API.Status(a.room)
		for _, l := range langs {
			if st.Listeners(l) != 1 {
				return false
			}
		}
		return true
	})
}

// stop ends the recordings and waits for the clients to finish them.
func (a *audience) stop() {
	a.cancel()
	a.wg.Wait()
}

// message notes a text message the listener received at now.
func (r *recording) message(typ string, raw []byte, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch typ {
	case wire.TypeCaption:
		var m wire.Caption
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		r.lines[m.Segment] = m.Text
		if m.Final {
			r.final[m.Segment] = true
			r.captions = append(r.captions, m.Text)
			r.finals = append(r.finals, m)
		}
	case wire.TypeDelay:
		var m wire.Delay
		if json.Unmarshal(raw, &m) == nil {
			r.delays = append(r.delays, delayAt{at: now, lag: time.Duration(m.MS) * time.Millisecond})
		}
	case wire.TypeState:
		var m wire.State
		if json.Unmarshal(raw, &m) == nil {
			r.states = append(r.states, m.State)
		}
	}
}

// pcmSource is a SampleReader over samples in memory that notes when it
// was first read: the moment the speak client starts its clock.
type pcmSource struct {
	samples []int16
	pos     int
	mu      sync.Mutex
	began   time.Time
}

func newPCMSource(pcm []byte) *pcmSource { return &pcmSource{samples: audio.Samples(pcm)} }

func (p *pcmSource) Read(dst []int16) (int, error) {
	p.mu.Lock()
	if p.began.IsZero() {
		p.began = time.Now()
	}
	p.mu.Unlock()
	if p.pos >= len(p.samples) {
		return 0, io.EOF
	}
	n := copy(dst, p.samples[p.pos:])
	p.pos += n
	return n, nil
}

// start is when the speak client began streaming (zero before).
func (p *pcmSource) start() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.began
}

// speakInBackground streams src to the room at real time until stop is
// called (or src ends); stop waits for the speak client to hang up.
func speakInBackground(t *testing.T, server string, room harness.Room, src client.SampleReader) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := client.Speak(ctx, client.SpeakOptions{
			Server: server, Room: room.ID, Key: room.SpeakerKey, Source: src, Realtime: true,
		})
		if err != nil && ctx.Err() == nil {
			t.Errorf("speak: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// endlessSpeech is a SampleReader of source-language speech with no end:
// the speaker of a test that stops it through the speak client's context.
type endlessSpeech struct {
	tone  []int16
	pos   int
	burst int // samples of speech before a pause; 0: no pauses
	pause int
	n     int
}

func newEndlessSpeech(burst, pause time.Duration) *endlessSpeech {
	return &endlessSpeech{
		tone:  audio.Samples(fakerealtime.Speech("en", time.Second)),
		burst: int(burst.Seconds() * audio.Rate), pause: int(pause.Seconds() * audio.Rate),
	}
}

func (e *endlessSpeech) Read(dst []int16) (int, error) {
	for i := range dst {
		if e.burst > 0 && e.n%(e.burst+e.pause) >= e.burst {
			dst[i] = 0
		} else {
			dst[i] = e.tone[e.pos]
		}
		e.pos = (e.pos + 1) % len(e.tone) // 1 s of a whole number of cycles: seamless
		e.n++
	}
	return len(dst), nil
}

// talk is a scripted speech: numbered turns of speech with pauses between.
type talk struct {
	pcm    []byte
	turns  []time.Duration // speech of each turn
	speech time.Duration   // all speech, pauses left out
}

// newTalk scripts turns of speech lasting [minTurn, maxTurn] with pauses of
// [minPause, maxPause] until about length, from a fixed seed so every run
// speaks the same talk.
func newTalk(length, minTurn, maxTurn, minPause, maxPause time.Duration) talk {
	rng := rand.New(rand.NewPCG(3, 7))
	between := func(lo, hi time.Duration) time.Duration {
		ms := lo.Milliseconds() + rng.Int64N(hi.Milliseconds()-lo.Milliseconds()+1)
		return time.Duration(ms/20*20) * time.Millisecond // whole 20 ms frames
	}
	var tk talk
	tk.pcm = append(tk.pcm, fakerealtime.Silence(500*time.Millisecond)...)
	for total := time.Duration(0); total < length; {
		turn, pause := between(minTurn, maxTurn), between(minPause, maxPause)
		tk.pcm = append(tk.pcm, fakerealtime.Speech("en", turn)...)
		tk.pcm = append(tk.pcm, fakerealtime.Silence(pause)...)
		tk.turns = append(tk.turns, turn)
		tk.speech += turn
		total += turn + pause
	}
	return tk
}

// duration is how much of pcm carries lang's tone, as audio time.
func duration(pcm []byte, lang string) time.Duration {
	const block = 2400 * 2 // 100 ms
	var n int
	for i := 0; i+block <= len(pcm); i += block {
		b := pcm[i : i+block]
		if fakerealtime.RMS(b) > 0.01 && fakerealtime.Goertzel(b, fakerealtime.ToneHz(lang)) > 0.5 {
			n++
		}
	}
	return time.Duration(n) * 100 * time.Millisecond
}

// pcmDuration is the play time of PCM16 mono 24 kHz.
func pcmDuration(n int) time.Duration {
	return time.Duration(n/2) * time.Second / audio.Rate
}

// quantiles returns the median and maximum of ds.
func quantiles(ds []time.Duration) (median, maximum time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)-1]
}
