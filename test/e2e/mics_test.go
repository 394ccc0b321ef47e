package e2e

import (
	"context"
	"fmt"
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

// The speakers of the panel talk at half the fake model's loudness, so a
// listener can tell the original (quieter) from an interpretation.
const panelAmp = 0.15

// panelTurn is one turn of the panel: who speaks, in what language, from
// when to when (from the start of the talk).
type panelTurn struct {
	mic, lang  string
	from, till time.Duration
}

// panelScript is a mic's whole talk: its language during its turns,
// silence between them, as a live mic sends it.
func panelScript(turns []panelTurn, mic string, length time.Duration) []byte {
	pcm := fakerealtime.Silence(length)
	for _, tn := range turns {
		if tn.mic != mic {
			continue
		}
		speech := fakerealtime.Tone(fakerealtime.ToneHz(tn.lang), tn.till-tn.from, panelAmp)
		copy(pcm[audio.DurationBytes(tn.from):], speech)
	}
	return pcm
}

// heardKind is what a listener heard in 100 ms of a channel: silence, the
// original voice of a language, or an interpretation into one.
type heardKind struct {
	lang     string // "" for silence
	original bool
}

func (k heardKind) String() string {
	switch {
	case k.lang == "":
		return "silence"
	case k.original:
		return "original " + k.lang
	default:
		return "interpretation " + k.lang
	}
}

// heardRun is a stretch of what a listener heard: one kind, from when to
// when it arrived.
type heardRun struct {
	kind       heardKind
	start, end time.Time
	length     time.Duration
}

// heardRuns cuts a recording into runs of what was heard, 100 ms at a
// time (runs shorter than 300 ms left out: the edges of turns, the ducked
// tail of an interpretation under the original). Runs of the same kind
// over silence are one run.
func heardRuns(rec *recording, langs []string) []heardRun {
	pcm, frames := rec.audio(), rec.heardFrames()
	block := audio.DurationBytes(100 * time.Millisecond)
	var runs []heardRun
	var cur heardRun
	flush := func() {
		if cur.length < 300*time.Millisecond || cur.kind.lang == "" {
			return
		}
		if n := len(runs); n > 0 && runs[n-1].kind == cur.kind {
			runs[n-1].end, runs[n-1].length = cur.end, runs[n-1].length+cur.length
			return
		}
		runs = append(runs, cur)
	}
	off := 0
	for _, f := range frames {
		// A message's blocks arrived with it; the listener plays them on.
		for k := 0; k+block <= f.bytes; k += block {
			b := pcm[off+k : off+k+block]
			at := f.at.Add(audio.BytesDuration(k))
			kind := heardKind{}
			if rms := fakerealtime.RMS(b); rms > 0.02 {
				kind.lang = fakerealtime.DetectLanguage(b, langs)
				// A sine of amplitude a has RMS a/√2: the panel's 0.15 is
				// 0.106, the model's 0.3 is 0.212.
				kind.original = rms < 0.16
			}
			if kind != cur.kind {
				flush()
				cur = heardRun{kind: kind, start: at}
			}
			cur.end, cur.length = at.Add(100*time.Millisecond), cur.length+100*time.Millisecond
		}
		off += f.bytes
	}
	flush()
	return runs
}

// TestPanelOfTwoMicsInTwoLanguages is a room's two mics taking turns in two
// languages: an English speaker (mic main) and a Spanish guest (mic
// guest), in a room with English, Spanish and French channels. Each
// channel carries the original while the floor speaks its language and
// the interpretation otherwise; French interprets both; the floor hears
// both; a listener without passthrough hears only interpretations; every
// turn once, in order; captions name the speaker.
func TestPanelOfTwoMicsInTwoLanguages(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"panel","name":"Panel","source_language":"en",
		"languages":[{"code":"es"},{"code":"fr"}]}`)

	aud := newAudience(t, s, room.ID)
	rec := map[string]*recording{}
	for _, lang := range []string{"en", "es", "fr", wire.Floor} {
		rec[lang] = aud.listen(lang, "")
	}
	rec["en-alone"] = aud.listenWith(client.ListenOptions{Lang: "en", NoPassthrough: true})
	harness.WaitFor(t, 10*time.Second, "every listener counted", func() bool {
		st := s.API.Status(room.ID)
		return st.Listeners("en") == 2 && st.Listeners("es") == 1 && st.Listeners("fr") == 1
	})

	const turn, gap = 2 * time.Second, 1500 * time.Millisecond
	var turns []panelTurn
	at := time.Duration(0)
	for range 3 {
		turns = append(turns,
			panelTurn{"main", "en", at, at + turn},
			panelTurn{"guest", "es", at + turn + gap, at + 2*turn + gap})
		at += 2 * (turn + gap)
	}
	length := at + 3*time.Second // the last words' interpretation still comes

	// Both mics connect and speak at once, each its script.
	var wg sync.WaitGroup
	sources := map[string]*pcmSource{}
	for _, m := range []struct{ mic, name, lang string }{{"main", "Ada", "en"}, {"guest", "Ana", "es"}} {
		src := newPCMSource(panelScript(turns, m.mic, length))
		sources[m.mic] = src
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := client.Speak(context.Background(), client.SpeakOptions{
				Server: s.URL(), Room: room.ID, Key: room.SpeakerKey, Realtime: true,
				Source: src, Mic: m.mic, Name: m.name, Language: m.lang,
			})
			if err != nil {
				t.Errorf("speak %s: %v", m.mic, err)
			}
		}()
	}
	wg.Wait()
	start := sources["main"].start()
	harness.WaitFor(t, 20*time.Second, "the last turn's interpretations", func() bool {
		return len(rec["fr"].finalLines()) >= 6 && len(rec["es"].finalLines()) >= 6 && len(rec["en"].finalLines()) >= 6
	})
	aud.stop()

	langs := []string{"en", "es", "fr"}
	orig := func(l string) heardKind { return heardKind{l, true} }
	interp := func(l string) heardKind { return heardKind{l, false} }
	want := map[string][]heardKind{
		// The Spanish channel: the English turns interpreted, the guest's
		// own voice during hers; the English channel the reverse.
		"es": {interp("es"), orig("es"), interp("es"), orig("es"), interp("es"), orig("es")},
		"en": {orig("en"), interp("en"), orig("en"), interp("en"), orig("en"), interp("en")},
		// French interprets both.
		"fr": {interp("fr")},
		// The floor: both mics, untranslated.
		wire.Floor: {orig("en"), orig("es"), orig("en"), orig("es"), orig("en"), orig("es")},
		// Without passthrough: the interpretations of the Spanish alone.
		"en-alone": {interp("en")},
	}
	for name, w := range want {
		runs := heardRuns(rec[name], langs)
		var kinds []heardKind
		for _, r := range runs {
			kinds = append(kinds, r.kind)
		}
		if fmt.Sprint(kinds) != fmt.Sprint(w) {
			t.Errorf("%s heard %v, want %v", name, kinds, w)
			continue
		}
		// Every turn whole: each run lasts about the turns it holds (a
		// run of the same kind spans the turns it follows over silence).
		turnsIn := map[string]int{"fr": 6, "en-alone": 3}[name]
		for i, r := range runs {
			per := turn
			if turnsIn > 0 {
				per = turn * time.Duration(turnsIn)
			}
			if r.length < per-500*time.Millisecond || r.length > per+time.Duration(max(1, turnsIn))*400*time.Millisecond {
				t.Errorf("%s: run %d (%v) lasted %v, want about %v", name, i, r.kind, r.length, per)
			}
		}
		if len(runs) == 6 {
			logSwitches(t, name, runs, turns, start, gap)
		}
	}

	// Captions: every turn once, in order, each naming its speaker and
	// the language spoken.
	type line struct {
		speaker, from string
		original      bool
	}
	ada, ana := line{"Ada", "en", false}, line{"Ana", "es", false}
	wantLines := map[string][]line{
		"es": {ada, {"Ana", "es", true}, ada, {"Ana", "es", true}, ada, {"Ana", "es", true}},
		"en": {{"Ada", "en", true}, ana, {"Ada", "en", true}, ana, {"Ada", "en", true}, ana},
		"fr": {ada, ana, ada, ana, ada, ana},
	}
	for name, w := range wantLines {
		var got []line
		for _, c := range rec[name].finalLines() {
			got = append(got, line{c.Speaker, c.SourceLanguage, c.Source})
			if c.Source && !strings.HasPrefix(c.Text, "source sentence") ||
				!c.Source && !strings.HasPrefix(c.Text, "["+name+"] sentence") {
				t.Errorf("%s: caption %q is not what %s's sessions say", name, c.Text, name)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s captions %v, want %v", name, got, w)
		}
	}
}

// logSwitches logs, for a channel that alternates original and
// interpretation turn by turn, how late each turn was heard after it was
// spoken (by kind) and the silence at each change of voice beyond the
// pause the speakers left.
func logSwitches(t *testing.T, name string, runs []heardRun, turns []panelTurn, start time.Time, pause time.Duration) {
	var origLag, interpLag, extra []time.Duration
	for i, r := range runs {
		lag := r.start.Sub(start.Add(turns[i].from))
		if r.kind.original {
			origLag = append(origLag, lag)
		} else {
			interpLag = append(interpLag, lag)
		}
		if i > 0 {
			extra = append(extra, r.start.Sub(runs[i-1].end)-pause)
		}
	}
	om, _ := quantiles(origLag)
	im, _ := quantiles(interpLag)
	em, ex := quantiles(extra)
	t.Logf("%s: heard the original %v after it was spoken, the interpretation %v; a change of voice added %v (max %v) to the %v pause",
		name, om.Round(10*time.Millisecond), im.Round(10*time.Millisecond), em.Round(10*time.Millisecond), ex.Round(10*time.Millisecond), pause)
}
