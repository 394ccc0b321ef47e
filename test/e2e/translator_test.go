package e2e

// The translator end to end: the whole service in-process with the
// fake Realtime server, a speaker streaming at real time with the speak
// client and listeners recording with the listen client. Output is paced at
// real time, so these tests run in wall time; the talk is scaled down (a
// 150 s talk with sessions that live 30 s stands for a 10-minute talk with
// sessions that live 2 minutes). The figures they log are in
// docs/translator.md.

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/internal/client"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// speakAll streams src to the room at real time and fails the test if the
// speak client does.
func speakAll(t *testing.T, s *service.Service, room harness.Room, src client.SampleReader) {
	t.Helper()
	if err := client.Speak(context.Background(), client.SpeakOptions{
		Server: s.URL(), Room: room.ID, Key: room.SpeakerKey, Source: src, Realtime: true,
	}); err != nil {
		t.Fatalf("speak: %v", err)
	}
}

// sessionsOf lists the fake's sessions of ep speaking lang, in opening order.
func sessionsOf(f *fakerealtime.Server, ep fakerealtime.Endpoint, lang string) []fakerealtime.SessionInfo {
	var out []fakerealtime.SessionInfo
	for _, si := range f.Sessions() {
		if si.Endpoint == ep && si.Lang == lang {
			out = append(out, si)
		}
	}
	return out
}

// waitQuiet waits until rec has received nothing for quiet, and at most
// timeout: the end of a channel's output after its sessions have closed.
func waitQuiet(t *testing.T, rec *recording, quiet, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f := rec.heardFrames()
		if len(f) > 0 && time.Since(f[len(f)-1].at) >= quiet {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the channel never went quiet")
		}
		time.Sleep(100 * time.Millisecond) // polling: no event marks the end of a stream
	}
}

// logLag logs the steady lag a listener was told (`delay` messages, capture
// time of the speech → sent to the listener) from `from` on.
func logLag(t *testing.T, what string, rec *recording, from time.Time) (median, maximum time.Duration) {
	var ds []time.Duration
	for _, d := range rec.delayFigures() {
		if d.at.After(from) {
			ds = append(ds, d.lag)
		}
	}
	median, maximum = quantiles(ds)
	t.Logf("%s: steady lag median %v, max %v over %d delay messages", what, median.Round(10*time.Millisecond), maximum.Round(10*time.Millisecond), len(ds))
	return median, maximum
}

var (
	esLine = regexp.MustCompile(`^\[es\] sentence (\d+)(\.?)$`)
	nlLine = regexp.MustCompile(`^\[nl\] (sentence \d+|\(audio\))\.$`)
)

// TestSoakTalkThroughRotationsAndADrop is the soak: an 80 s talk of
// numbered turns through sessions that expire every 20 s (rotated 8 s
// before, so a move about every 12 s) and one connection drop, into Spanish (the translation model) and
// Dutch (the instructed model). Every turn must be heard translated once, in order,
// with a flat context, and no session may run into its expiry.
//
// BABELCAST_SOAK_TALK and BABELCAST_SOAK_SESSION (Go durations) run it at
// another scale, such as 10m and 2m; docs/translator.md has
// the figures of both.
func TestSoakTalkThroughRotationsAndADrop(t *testing.T) {
	t.Parallel()
	const rotateBefore = 8 * time.Second
	talkLength := envDuration(t, "BABELCAST_SOAK_TALK", 80*time.Second)
	sessionLife := envDuration(t, "BABELCAST_SOAK_SESSION", 20*time.Second)
	if sessionLife < 2*rotateBefore || talkLength < 2*sessionLife {
		t.Fatalf("soak of %v with sessions of %v: the talk must span two sessions, each longer than %v", talkLength, sessionLife, 2*rotateBefore)
	}
	t.Logf("soak: a %v talk, sessions living %v", talkLength, sessionLife)
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{SessionDuration: sessionLife}, Config: func(c *app.Config) {
		c.RotateBefore = rotateBefore
	}})
	room := s.API.CreateRoom(`{"id":"soak","name":"Soak","source_language":"en","languages":[{"code":"es"},{"code":"nl"}]}`)

	aud := newAudience(t, s, room.ID)
	es, nl := aud.listen("es", ""), aud.listen("nl", "")
	aud.await("es", "nl")

	tk := newTalk(talkLength, 1500*time.Millisecond, 3*time.Second, 600*time.Millisecond, time.Second)
	src := newPCMSource(tk.pcm)
	// Mid-talk, while Dutch is being answered (so a turn is left without
	// its answer), every connection to the provider drops without a close.
	var cut atomic.Int64
	talking := make(chan struct{})
	dropped := make(chan struct{})
	go func() {
		defer close(dropped)
		select {
		case <-time.After(talkLength / 2):
		case <-talking:
			return
		}
		s.Fake.WaitUntil(10*time.Second, func() bool { return answering(s.Fake, "nl") })
		cut.Store(int64(s.Fake.Drop("")))
	}()
	speakAll(t, s, room, src)
	close(talking)
	<-dropped
	talkEnd := time.Now()
	t.Logf("talk: %d turns, %v of speech in %v", len(tk.turns), tk.speech, talkEnd.Sub(src.start()).Round(100*time.Millisecond))

	// The speaker has left: after the linger the channels close, flushing
	// what their sessions still hold.
	if !s.Fake.WaitUntil(30*time.Second, func() bool { return s.Fake.OpenNow("") == 0 }) {
		t.Fatal("sessions still open after the speaker left and the linger passed")
	}
	waitQuiet(t, es, time.Second, 10*time.Second)
	waitQuiet(t, nl, time.Second, 10*time.Second)
	aud.stop()
	if cut.Load() < 2 {
		t.Fatalf("the drop cut %d connections, want both channels' (2 or more)", cut.Load())
	}

	esSessions := sessionsOf(s.Fake, fakerealtime.Translate, "es")
	nlSessions := sessionsOf(s.Fake, fakerealtime.Realtime, "nl")
	if len(s.Fake.Sessions()) != len(esSessions)+len(nlSessions) {
		t.Errorf("%d sessions, of which %d es and %d nl: something else opened", len(s.Fake.Sessions()), len(esSessions), len(nlSessions))
	}

	// Rotation: a fresh connection about every sessionLife-rotateBefore,
	// plus one for the drop; none may have run into its expiry.
	minOpened := int(talkLength / sessionLife)
	maxOpened := int(talkLength/(sessionLife-rotateBefore-5*time.Second)) + 3
	for _, ss := range [][]fakerealtime.SessionInfo{esSessions, nlSessions} {
		if len(ss) < minOpened || len(ss) > maxOpened {
			t.Errorf("%s: %d connections, want %d..%d", ss[0].Lang, len(ss), minOpened, maxOpened)
		}
		for _, si := range ss {
			if si.CloseReason == "session expired" {
				t.Errorf("%s connection %s ran into its expiry (opened %v, closed %v)", si.Lang, si.ID,
					si.Opened.Format("15:04:05.000"), si.Closed.Format("15:04:05.000"))
			}
		}
	}
	t.Logf("connections: es %d, nl %d (each lives %v, rotated %v before; %d cut by the drop)",
		len(esSessions), len(nlSessions), sessionLife, rotateBefore, cut.Load())

	checkInterpretSoak(t, tk, nl, nlSessions)
	checkTranslateSoak(t, tk, es, esSessions)
	if c := s.Fake.CancelledResponses(); c != 0 {
		t.Errorf("%d responses cancelled: a translation was cut off", c)
	}
	logLag(t, "soak es (translate)", es, src.start().Add(5*time.Second))
	logLag(t, "soak nl (interpret)", nl, src.start().Add(5*time.Second))
}

// checkInterpretSoak checks the instructed channel of the soak: one turn
// per burst of speech, every turn answered exactly once (on a fresh
// connection for those the drop left unanswered), captions heard in the
// order of the answers, all the answers' audio heard, a flat context.
func checkInterpretSoak(t *testing.T, tk talk, rec *recording, sessions []fakerealtime.SessionInfo) {
	t.Helper()
	n := len(tk.turns)
	var turns, unanswered, replayed int
	var expected, interrupted []string
	var spoken, interruptedMs int64
	var tokens []int
	for _, si := range sessions {
		turns += len(si.Turns)
		for item, c := range si.AnswerCounts() {
			switch {
			case c == 0:
				unanswered++
			case c > 1:
				t.Errorf("nl: turn %s of connection %s answered %d times", item, si.ID, c)
			}
		}
		for _, r := range si.Responses {
			switch r.Status {
			case "completed":
				expected = append(expected, r.Transcript)
				spoken += r.AudioMs
				tokens = append(tokens, r.InputTokens)
				if strings.Contains(r.Transcript, "(audio)") {
					replayed++
				}
			case "incomplete": // cut by the drop: asked again on the fresh connection
				interrupted = append(interrupted, r.Transcript)
				interruptedMs += r.SentMs
			default:
				t.Errorf("nl: response %s ended %s (%s)", r.ID, r.Status, r.Reason)
			}
		}
		if si.ConversationItems > 4 {
			t.Errorf("nl: connection %s ended holding %d conversation items: old turns are not deleted", si.ID, si.ConversationItems)
		}
	}
	// Server VAD makes one turn of each burst; the connection switch at a
	// pause and the drop must neither split nor merge them.
	if turns != n {
		t.Errorf("nl: %d turns committed, want %d (one per burst of speech)", turns, n)
		var script []string
		for _, d := range tk.turns {
			script = append(script, fmt.Sprint(d.Milliseconds()+800))
		}
		t.Logf("nl: the script's turns with padding (ms): %s", strings.Join(script, " "))
		for _, si := range sessions {
			var rs []string
			for _, r := range si.Responses {
				rs = append(rs, fmt.Sprintf("%d:%s", r.AudioMs, r.Transcript))
			}
			t.Logf("nl: connection %s (%s) turns %d: %s", si.ID, si.CloseReason, len(si.Turns), strings.Join(rs, " | "))
		}
	}
	if replayed == 0 {
		t.Error("nl: the drop left no turn to answer again on a fresh connection")
	}
	if unanswered != replayed {
		t.Errorf("nl: %d turns left unanswered by their connection, %d answered again on a fresh one", unanswered, replayed)
	}
	if len(expected) != n {
		t.Errorf("nl: %d translations completed, want %d", len(expected), n)
	}

	// Heard: the answers' captions in order, each once. A reply the drop
	// cut short may have shown a line before it was asked again.
	var heard []string
	for _, l := range rec.lineTexts() {
		if nlLine.MatchString(l) {
			heard = append(heard, l)
		}
	}
	if !sameWithExtras(heard, expected, interrupted) {
		t.Errorf("nl captions heard (%d) differ from the answers in order (%d):\nheard    %q\nanswered %q", len(heard), len(expected), heard, expected)
	}

	// Audio: all the answers' audio, nothing more than what the drop cut
	// short (the fake counts audio in 100 ms deltas; allow one per answer
	// for the rounding of the listener's bytes to time).
	got := pcmDuration(len(rec.audio()))
	want := time.Duration(spoken) * time.Millisecond
	if got < want-200*time.Millisecond || got > want+time.Duration(interruptedMs)*time.Millisecond+200*time.Millisecond {
		t.Errorf("nl: heard %v of audio, the answers hold %v (+%dms cut short by the drop)", got, want, interruptedMs)
	}
	if tone := duration(rec.audio(), "nl"); tone < got*95/100 {
		t.Errorf("nl: only %v of the %v heard is Dutch", tone, got)
	}
	// Each answer speaks its turn: the burst, the VAD's 300 ms of prefix
	// padding and the 500 ms of silence that ended it.
	if want < tk.speech || want > tk.speech+time.Duration(n)*time.Second {
		t.Errorf("nl: answers hold %v of audio for %v of speech in %d turns", want, tk.speech, n)
	}
	t.Logf("nl: %d turns, %d answered again after the drop, heard %v of audio for %v of speech", turns, replayed, got.Round(100*time.Millisecond), tk.speech)

	// Flat context: each response sees its own turn, and the input tokens
	// of the last responses are those of the first.
	var maxItems int
	for _, si := range sessions {
		for _, r := range si.Responses {
			maxItems = max(maxItems, r.InputItems)
		}
	}
	if maxItems > 2 {
		t.Errorf("nl: a response had %d input items: the context grows", maxItems)
	}
	t.Logf("nl: at most %d input item(s) per response", maxItems)
	if len(tokens) >= 20 {
		first, last := mean(tokens[:10]), mean(tokens[len(tokens)-10:])
		t.Logf("nl: input tokens per response: first ten %.0f on average, last ten %.0f", first, last)
		if last > first*1.25 {
			t.Errorf("nl: input tokens grew from %.0f to %.0f per response: the context is not flat", first, last)
		}
	}
}

// checkTranslateSoak checks the translation channel of the soak: captions
// number sentences per connection, so each connection's lines must count
// 1, 2, 3… without a gap or a repeat; all together one line per burst (and
// at most one burst split by the drop); all the model's audio heard.
func checkTranslateSoak(t *testing.T, tk talk, rec *recording, sessions []fakerealtime.SessionInfo) {
	t.Helper()
	n := len(tk.turns)
	lines := rec.lineTexts()
	runs, last, unfinished := 0, 0, 0
	for _, l := range lines {
		m := esLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("es: caption %q is not a line of the Spanish session", l)
			continue
		}
		k, _ := strconv.Atoi(m[1])
		if m[2] == "" {
			unfinished++ // the sentence the drop cut: its full stop never came
		}
		switch {
		case k == 1:
			runs++
		case k != last+1:
			t.Errorf("es: line %q follows sentence %d: lost or repeated (lines %q)", l, last, lines)
		}
		last = k
	}
	if runs > len(sessions) {
		t.Errorf("es: %d runs of sentence numbers from %d connections", runs, len(sessions))
	}
	if len(lines) < n || len(lines) > n+1 || unfinished > 1 {
		t.Errorf("es: %d caption lines (%d unfinished) for %d bursts of speech: %q", len(lines), unfinished, n, lines)
	}

	var outMs int64
	for _, si := range sessions {
		outMs += si.OutputMs
	}
	got := pcmDuration(len(rec.audio()))
	want := time.Duration(outMs) * time.Millisecond
	// All the model's audio is heard; what it sent the moment the drop
	// cut the connection may be lost (the replay re-sends that speech).
	if got > want || got < want-1500*time.Millisecond {
		t.Errorf("es: heard %v of audio, the model sent %v", got, want)
	}
	// The model speaks every 200 ms frame that holds speech: each burst
	// adds at most one frame, and the replay after the drop a few.
	if want < tk.speech-time.Second || want > tk.speech+time.Duration(n)*200*time.Millisecond+2*time.Second {
		t.Errorf("es: the model spoke %v for %v of speech in %d bursts", want, tk.speech, n)
	}
	if tone := duration(rec.audio(), "es"); tone < got*95/100 {
		t.Errorf("es: only %v of the %v heard is Spanish", tone, got)
	}
	t.Logf("es: %d lines in %d runs, heard %v of audio for %v of speech", len(lines), runs, got.Round(100*time.Millisecond), tk.speech)
}

// sameWithExtras reports whether heard is want with at most len(extras)
// lines of extras inserted (the lines of replies cut short).
func sameWithExtras(heard, want, extras []string) bool {
	i, j, skipped := 0, 0, 0
	for i < len(heard) {
		switch {
		case j < len(want) && heard[i] == want[j]:
			i++
			j++
		case skipped < len(extras) && contains(extras, heard[i]):
			i++
			skipped++
		default:
			return false
		}
	}
	return j == len(want)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mean(xs []int) float64 {
	var sum int
	for _, x := range xs {
		sum += x
	}
	return float64(sum) / float64(max(1, len(xs)))
}

// answering reports whether a response in lang is being streamed.
func answering(f *fakerealtime.Server, lang string) bool {
	for _, r := range f.Responses() {
		if r.Status == "in_progress" && r.Lang == lang {
			return true
		}
	}
	return false
}

// openNow counts the fake's open sessions speaking lang, on either endpoint.
func openNow(f *fakerealtime.Server, lang string) int {
	n := 0
	for _, si := range f.Sessions() {
		if si.Open && si.Lang == lang {
			n++
		}
	}
	return n
}

// TestLongStretchHeardWithinSeconds is the lag check: 30 s of speech
// without a pause. The translation model streams; the instructed model
// gets turns only because the session cuts the stretch itself (at
// MaxTurn, 8 s): without the cut its first audio would come after the
// speech ends, 30 s in. It logs first-audio and steady lag of both kinds.
func TestLongStretchHeardWithinSeconds(t *testing.T) {
	t.Parallel()
	const stretch = 30 * time.Second
	// The instructed channel runs about 9.5 s behind the speaker here (8 s
	// turns). The default linger keeps the channels open until the whole
	// stretch is heard: with the short one, the channel closes 3 s after
	// the speaker leaves and its flush (bounded to 10 s) has little slack,
	// so on a busy machine the last turn's audio was cut.
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}, Config: func(c *app.Config) { c.Linger = 30 * time.Second }})
	room := s.API.CreateRoom(`{"id":"lag","name":"Lag","source_language":"en","languages":[{"code":"es"},{"code":"nl"}]}`)
	aud := newAudience(t, s, room.ID)
	es, nl := aud.listen("es", ""), aud.listen("nl", "")
	aud.await("es", "nl")

	lead := time.Second
	pcm := append(fakerealtime.Silence(lead), fakerealtime.Speech("en", stretch)...)
	pcm = append(pcm, fakerealtime.Silence(2*time.Second)...)
	src := newPCMSource(pcm)
	speakAll(t, s, room, src)
	speechStart := src.start().Add(lead)
	harness.WaitFor(t, 20*time.Second, "the whole stretch translated", func() bool {
		return duration(es.audio(), "es") >= stretch*95/100 && duration(nl.audio(), "nl") >= stretch*95/100
	})
	aud.stop()

	for _, c := range []struct {
		lang, kind string
		rec        *recording
		bound      time.Duration
	}{
		// The translation model answers within its own delay (600 ms of
		// model time in the fake) plus the trip.
		{"es", "translate", es, 3 * time.Second},
		// The instructed model hears the first 8 s as a turn: about 8 s.
		{"nl", "interpret", nl, 12 * time.Second},
	} {
		first := c.rec.firstAudioAfter(speechStart, c.lang)
		if first.IsZero() {
			t.Errorf("%s: no translated audio", c.lang)
			continue
		}
		lag := first.Sub(speechStart)
		t.Logf("%s (%s): first translated audio %v after the speech began", c.lang, c.kind, lag.Round(10*time.Millisecond))
		if lag > c.bound {
			t.Errorf("%s (%s): first audio after %v, want at most %v", c.lang, c.kind, lag.Round(10*time.Millisecond), c.bound)
		}
		logLag(t, c.lang+" ("+c.kind+") during the stretch", c.rec, first)
	}

	// The instructed session cut the stretch into turns of at most MaxTurn
	// (each answer speaks its whole turn: the first also holds the silence
	// that came before the speech, up to the 1 s lead).
	nlSessions := sessionsOf(s.Fake, fakerealtime.Realtime, "nl")
	var cuts []string
	for _, si := range nlSessions {
		for _, r := range si.Responses {
			cuts = append(cuts, fmt.Sprint(time.Duration(r.AudioMs)*time.Millisecond))
			if time.Duration(r.AudioMs)*time.Millisecond > 8*time.Second+lead {
				t.Errorf("nl: an answer of %v: a turn longer than MaxTurn", time.Duration(r.AudioMs)*time.Millisecond)
			}
		}
	}
	t.Logf("nl: the stretch went to the model as turns of %s", strings.Join(cuts, ", "))
	if len(cuts) < 4 {
		t.Errorf("nl: %d turns for %v of speech without a pause, want it cut into 4 or more", len(cuts), stretch)
	}
	if c := s.Fake.CancelledResponses(); c != 0 {
		t.Errorf("%d responses cancelled", c)
	}
}

// TestSessionsOnlyForLanguagesListenedTo is the presence check: a
// language nobody listens to runs no session, an always_on one runs without
// listeners, and a session closes once its last listener has been gone for
// the linger.
func TestSessionsOnlyForLanguagesListenedTo(t *testing.T) {
	t.Parallel()
	const linger = 3 * time.Second // startService's
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"presence","name":"Presence","source_language":"en",
		"languages":[{"code":"es"},{"code":"nl"},{"code":"de","always_on":true}]}`)
	stopSpeaking := speakInBackground(t, s.URL(), room, newEndlessSpeech(time.Second, 700*time.Millisecond))
	defer stopSpeaking()

	aud := newAudience(t, s, room.ID)
	es := aud.listen("es", "")
	harness.WaitFor(t, 15*time.Second, "es and de active", func() bool {
		st := s.API.Status(room.ID)
		return st.Lang("es").State == "active" && st.Lang("de").State == "active"
	})
	harness.WaitFor(t, 10*time.Second, "Spanish heard", func() bool { return duration(es.audio(), "es") >= time.Second })

	// Nobody listens to Dutch: no session, now or a while later.
	if s.Fake.WaitUntil(3*time.Second, func() bool { return s.Fake.OpenedFor("", "nl") > 0 }) {
		t.Error("a session was opened for nl, which nobody listens to")
	}
	st := s.API.Status(room.ID)
	if nl := st.Lang("nl"); nl.State != "idle" || nl.Listeners != 0 {
		t.Errorf("nl status %+v, want idle with no listeners", nl)
	}
	if de := st.Lang("de"); de.Listeners != 0 || s.Fake.OpenedFor(fakerealtime.Translate, "de") != 1 {
		t.Errorf("de (always_on): status %+v, %d sessions opened; want one session without listeners", de, s.Fake.OpenedFor(fakerealtime.Translate, "de"))
	}
	if n := s.Fake.OpenedFor(fakerealtime.Translate, "es"); n != 1 {
		t.Errorf("%d sessions opened for es, want 1", n)
	}

	// The last Spanish listener leaves: the session lingers, then closes.
	aud.stop()
	left := time.Now()
	if !s.Fake.WaitUntil(linger+10*time.Second, func() bool { return openNow(s.Fake, "es") == 0 }) {
		t.Fatal("the es session is still open after its last listener left and the linger passed")
	}
	closedAfter := time.Since(left)
	t.Logf("es session closed %v after its last listener left (linger %v)", closedAfter.Round(10*time.Millisecond), linger)
	if closedAfter < linger-500*time.Millisecond {
		t.Errorf("the es session closed %v after its last listener left, before the linger of %v", closedAfter, linger)
	}
	harness.WaitFor(t, 5*time.Second, "es idle", func() bool { return s.API.Status(room.ID).Lang("es").State == "idle" })
	if openNow(s.Fake, "de") != 1 {
		t.Error("the always_on de session closed with the es listener")
	}
	if s.Fake.OpenedFor("", "nl") != 0 {
		t.Error("a session was opened for nl")
	}
}

// TestInvalidKeyIsAReadableErrorWithoutRetries: a wrong API key puts the
// channel in state error with a message an organizer can act on, after one
// connection attempt and none for several seconds after.
func TestInvalidKeyIsAReadableErrorWithoutRetries(t *testing.T) {
	t.Parallel()
	const wrongKey = "sk-wrong-key-for-the-test-0123"
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{APIKey: "sk-the-right-key-4567"}, Config: func(c *app.Config) { c.OpenAIKey = wrongKey }})
	room := s.API.CreateRoom(`{"id":"badkey","name":"Bad key","source_language":"en","languages":[{"code":"es"}]}`)
	aud := newAudience(t, s, room.ID)
	es := aud.listen("es", "")
	speakInBackground(t, s.URL(), room, newEndlessSpeech(time.Second, 500*time.Millisecond))

	var ls harness.LangStatus
	harness.WaitFor(t, 15*time.Second, "es in state error", func() bool {
		ls = s.API.Status(room.ID).Lang("es")
		return ls.State == "error"
	})
	t.Logf("es: state %s: %q", ls.State, ls.Error)
	if !strings.Contains(strings.ToLower(ls.Error), "api key") || strings.Contains(ls.Error, wrongKey) {
		t.Errorf("error message %q: want a readable word on the API key, without the key", ls.Error)
	}
	// No hot loop: the one refused attempt, and nothing more for a while.
	if s.Fake.WaitUntil(5*time.Second, func() bool { return s.Fake.Attempts("") > 1 }) {
		t.Errorf("%d connection attempts with a key the provider refused, want 1", s.Fake.Attempts(""))
	}
	if n := s.Fake.Attempts(""); n != 1 {
		t.Errorf("%d connection attempts, want 1", n)
	}
	if ls := s.API.Status(room.ID).Lang("es"); ls.State != "error" {
		t.Errorf("es state %q after the error, want it to stay error", ls.State)
	}
	aud.stop()
	if !contains(es.channelStates(), "error") {
		t.Errorf("the listener was told states %q, want error among them", es.channelStates())
	}
}

// TestRateLimitedThenActive: while the provider refuses connections with
// 429, the channel says starting (with the reason), retries with backoff,
// and becomes active once the limit lifts.
func TestRateLimitedThenActive(t *testing.T) {
	t.Parallel()
	const refuse = 6 * time.Second
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"limited","name":"Limited","source_language":"en","languages":[{"code":"es"}]}`)
	aud := newAudience(t, s, room.ID)
	es := aud.listen("es", "")
	aud.await("es")

	s.Fake.RejectConnections(refuse, time.Second)
	lifted := time.Now().Add(refuse)
	speakInBackground(t, s.URL(), room, newEndlessSpeech(time.Second, 500*time.Millisecond))

	var seen []string
	var message string
	harness.WaitFor(t, refuse+20*time.Second, "es active", func() bool {
		ls := s.API.Status(room.ID).Lang("es")
		if len(seen) == 0 || seen[len(seen)-1] != ls.State {
			seen = append(seen, ls.State)
		}
		if ls.State == "starting" && ls.Error != "" {
			message = ls.Error
		}
		return ls.State == "active"
	})
	activeAt := time.Now()
	t.Logf("es states %q; while refused: %q; active %v after the limit lifted; %d connection attempts",
		seen, message, activeAt.Sub(lifted).Round(10*time.Millisecond), s.Fake.Attempts(""))
	if contains(seen, "error") {
		t.Errorf("es went through state error under a rate limit: %q", seen)
	}
	if !contains(seen, "starting") {
		t.Errorf("es states %q, want starting while refused", seen)
	}
	if activeAt.Before(lifted) {
		t.Error("active before the limit lifted")
	}
	// Backoff, not a hot loop: the fake asks for 1 s between attempts.
	if n := s.Fake.Attempts(""); n > int(refuse/time.Second)+3 {
		t.Errorf("%d connection attempts in %v of refusals that ask for 1 s between them", n, refuse)
	}
	harness.WaitFor(t, 10*time.Second, "Spanish heard", func() bool { return duration(es.audio(), "es") >= time.Second })
	aud.stop()
}

// envDuration reads a Go duration from the environment variable name, or
// returns def when it is unset.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration such as 10m", name, v)
	}
	return d
}
