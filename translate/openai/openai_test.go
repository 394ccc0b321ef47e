package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/translate/engine"
)

func TestKindFor(t *testing.T) {
	e, err := New(Options{APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	gl := []room.GlossaryEntry{{Term: "NATS"}}
	cases := []struct {
		ch        engine.Channel
		kind      string
		permanent bool
	}{
		{engine.Channel{Target: "es", Mode: room.ModeAuto}, KindTranslate, false},
		{engine.Channel{Target: "pt-BR"}, KindTranslate, false},
		{engine.Channel{Target: "zh-Hant", Mode: room.ModeAuto}, KindTranslate, false},
		{engine.Channel{Target: "es", Voice: "marin", Mode: room.ModeAuto}, KindInterpret, false},
		{engine.Channel{Target: "es", Glossary: gl, Mode: room.ModeAuto}, KindInterpret, false},
		{engine.Channel{Target: "nl", Mode: room.ModeAuto}, KindInterpret, false},
		{engine.Channel{Target: "es", Mode: room.ModeInterpret}, KindInterpret, false},
		{engine.Channel{Target: "es", Voice: "marin", Glossary: gl, Mode: room.ModeTranslate}, KindTranslate, false},
		{engine.Channel{Target: "nl", Mode: room.ModeTranslate}, "", true},
	}
	for _, c := range cases {
		kind, err := e.KindFor(c.ch)
		if kind != c.kind || engine.IsPermanent(err) != c.permanent {
			t.Errorf("KindFor(%+v) = %q, %v; want %q, permanent %v", c.ch, kind, err, c.kind, c.permanent)
		}
		if c.permanent {
			var te *engine.Error
			if !errorsAs(err, &te) || te.Code != "unsupported_language" {
				t.Errorf("want unsupported_language, got %v", err)
			}
		}
	}
	if caps := e.Capabilities(); caps.Sources != nil || caps.Targets != nil {
		t.Errorf("capabilities = %+v, want any", caps)
	}
}

func TestEndpoint(t *testing.T) {
	e, _ := New(Options{APIKey: "k", RealtimeURL: "https://example.openai.azure.com/openai/v1/realtime"})
	if !e.azure {
		t.Error("an .openai.azure.com host must use the api-key header")
	}
	if got := e.endpoint(KindTranslate); got != "wss://example.openai.azure.com/openai/v1/realtime/translations?model=gpt-realtime-translate" {
		t.Errorf("translate endpoint = %s", got)
	}
	if got := e.endpoint(KindInterpret); got != "wss://example.openai.azure.com/openai/v1/realtime?model=gpt-realtime" {
		t.Errorf("realtime endpoint = %s", got)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without a key must fail")
	}
}

// The translation kind: session.update with only the output language and
// source transcription, 200 ms appends, and silence kept flowing so the
// model's pending tail comes out although the speaker has stopped.
func TestTranslationEndToEnd(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{})
	sink, f := openFed(t, fake, nil, engine.Channel{Room: "r", Source: "en", Target: "es", Mode: room.ModeAuto}, 4)
	s := f.s
	if s.Kind() != KindTranslate {
		t.Fatalf("kind = %s", s.Kind())
	}
	f.play(t, fakerealtime.Speech("en", time.Second))
	spokeFrom, spokeTo := f.clock.Add(-time.Second), f.clock
	// No more audio from the speaker: the tail (600 ms of model time behind)
	// must still come out, and the sentence must end.
	sink.waitFor(t, 5*time.Second, "the whole translation", func() bool {
		f, src := sink.finals(false), sink.finals(true)
		return toneMs(sink.audioCopy(), "es") >= 1000 && len(f) == 1 && len(src) == 1 &&
			strings.HasSuffix(f[0], ".") && strings.HasSuffix(src[0], ".")
	})
	if got := sink.finals(false); got[0] != "[es] sentence 1." {
		t.Errorf("caption = %q", got)
	}
	if got := sink.finals(true); got[0] != "source sentence 1." {
		t.Errorf("source caption = %q", got)
	}
	sink.mu.Lock()
	if sink.maxPiece > 200*bytesPerMS || sink.odd {
		t.Errorf("audio pieces: max %d bytes, odd %v; want ≤ 200 ms, even", sink.maxPiece, sink.odd)
	}
	for _, c := range sink.captured { // the speech each piece translates, by elapsed_ms
		if c.Before(spokeFrom) || !c.Before(spokeTo) {
			t.Errorf("capture time %v outside the speech [%v, %v)", c, spokeFrom, spokeTo)
			break
		}
	}
	sink.mu.Unlock()

	si := sessionsOf(fake, fakerealtime.Translate)[0]
	ups := eventsOf(si, "session.update")
	if len(ups) != 1 {
		t.Fatalf("%d session.update", len(ups))
	}
	delete(ups[0], "event_id")
	want := map[string]any{"type": "session.update", "session": map[string]any{"audio": map[string]any{
		"input":  map[string]any{"transcription": map[string]any{"model": DefaultTranscribeModel}},
		"output": map[string]any{"language": "es"},
	}}}
	if !reflect.DeepEqual(ups[0], want) {
		t.Errorf("session.update = %v\nwant %v", ups[0], want)
	}
	for _, a := range eventsOf(si, "session.input_audio_buffer.append") {
		if a["audio_bytes"] != float64(200*bytesPerMS) {
			t.Fatalf("append of %v bytes, want 200 ms chunks", a["audio_bytes"])
		}
	}
	if si.InputMs < 1600 {
		t.Errorf("model time %d ms: silence was not kept flowing", si.InputMs)
	}

	ctx := closeCtx(t)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	fake.WaitUntil(5*time.Second, func() bool { return !sessionsOf(fake, fakerealtime.Translate)[0].Open })
	si = sessionsOf(fake, fakerealtime.Translate)[0]
	if si.Open || si.CloseReason != "session.close" {
		t.Errorf("fake session open %v, reason %q; want closed by session.close", si.Open, si.CloseReason)
	}
	select {
	case <-s.Done():
	default:
		t.Error("Done not closed after Close")
	}
	if s.Err() != nil {
		t.Errorf("Err after Close = %v", s.Err())
	}
	if err := s.Append(make([]byte, 960), time.Now()); err == nil {
		t.Error("Append after Close must fail")
	}
}

// Close delivers what the model still holds: session.close flushes it.
func TestTranslationCloseFlushes(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{TranslateDelay: 5 * time.Second})
	sink, f := openFed(t, fake, nil, engine.Channel{Room: "r", Source: "en", Target: "fr"}, 8)
	f.play(t, fakerealtime.Speech("en", 800*time.Millisecond))
	if n := toneMs(sink.audioCopy(), "fr"); n != 0 {
		t.Fatalf("%d ms out before the delay: the fake is not holding output", n)
	}
	if err := f.s.Close(closeCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := toneMs(sink.audioCopy(), "fr"); n < 800 {
		t.Errorf("after Close %d ms of translation delivered, want all 800", n)
	}
	if got := sink.finals(false); len(got) != 1 || got[0] != "[fr] sentence 1." {
		t.Errorf("captions after Close = %q", got)
	}
}

// The instructed kind: the exact GA session.update, one out-of-band
// response per committed turn, never two at once, items deleted.
func TestInterpretEndToEnd(t *testing.T) {
	fake := newFake(t, fakerealtime.Options{ResponseSpeed: 2})
	ch := engine.Channel{Room: "r", RoomName: "Keynote", Source: "en", Target: "nl", Voice: "cedar",
		Glossary: []room.GlossaryEntry{{Term: "NATS", Note: "product name"}, {Term: "keynote", Translations: map[string]string{"nl": "hoofdlezing"}}},
		Notes:    "Talk about messaging."}
	sink, f := openFed(t, fake, nil, ch, 4)
	s := f.s
	if s.Kind() != KindInterpret {
		t.Fatalf("kind = %s", s.Kind())
	}
	const turns = 4
	f.bursts(t, turns, 700*time.Millisecond, 700*time.Millisecond) // turns come faster than the answers
	sink.waitFor(t, 20*time.Second, "every turn translated", func() bool { return len(sink.finals(false)) >= turns })
	for i, c := range sink.finals(false) {
		if want := "[nl] sentence " + itoa(i+1) + "."; c != want {
			t.Errorf("caption %d = %q, want %q", i, c, want)
		}
	}
	if src := sink.finals(true); len(src) != turns || src[0] != "source sentence 1." {
		t.Errorf("source captions = %q", src)
	}
	if n := toneMs(sink.audioCopy(), "nl"); n < turns*600 {
		t.Errorf("%d ms of Dutch audio, want about %d", n, turns*700)
	}

	fake.WaitUntil(2*time.Second, func() bool {
		return len(eventsOf(sessionsOf(fake, fakerealtime.Realtime)[0], "conversation.item.delete")) >= turns-1
	})
	si := sessionsOf(fake, fakerealtime.Realtime)[0]
	ups := eventsOf(si, "session.update")
	if len(ups) != 1 {
		t.Fatalf("%d session.update", len(ups))
	}
	raw, _ := json.Marshal(ups[0])
	if hasBetaField(string(raw)) {
		t.Errorf("beta field in %s", raw)
	}
	sess := ups[0]["session"].(map[string]any)
	instr, _ := sess["instructions"].(string)
	delete(sess, "instructions")
	pcm := map[string]any{"type": "audio/pcm", "rate": float64(24000)}
	want := map[string]any{
		"type": "realtime", "output_modalities": []any{"audio"},
		"audio": map[string]any{
			"input": map[string]any{
				"format":        pcm,
				"transcription": map[string]any{"model": DefaultTranscribeModel},
				"turn_detection": map[string]any{"type": "server_vad", "create_response": false,
					"interrupt_response": false, "silence_duration_ms": float64(500)},
			},
			"output": map[string]any{"format": pcm, "voice": "cedar"},
		},
	}
	if !reflect.DeepEqual(sess, want) {
		t.Errorf("session.update session = %v\nwant %v", sess, want)
	}
	for _, w := range []string{"Dutch", "Nederlands", "English", "NATS", "hoofdlezing", "Talk about messaging.", "never answer questions"} {
		if !strings.Contains(instr, w) {
			t.Errorf("instructions lack %q:\n%s", w, instr)
		}
	}
	if si.Lang != "nl" {
		t.Errorf("the fake reads the instructions as %q, want nl", si.Lang)
	}

	creates := eventsOf(si, "response.create")
	if len(creates) != len(si.Turns) || len(si.Turns) != turns {
		t.Errorf("%d response.create for %d turns (want %d)", len(creates), len(si.Turns), turns)
	}
	for _, c := range creates {
		r := c["response"].(map[string]any)
		in := r["input"].([]any)
		if r["conversation"] != "none" || len(in) != 1 || in[0].(map[string]any)["type"] != "item_reference" {
			t.Errorf("response.create = %v", r)
		}
		if !reflect.DeepEqual(r["output_modalities"], []any{"audio"}) || r["instructions"] == "" {
			t.Errorf("response.create = %v", r)
		}
	}
	answeredOnce(t, si)
	if len(si.Responses) != len(creates) {
		t.Errorf("%d responses for %d response.create: some were refused (one already active?)", len(si.Responses), len(creates))
	}
	if d := eventsOf(si, "conversation.item.delete"); len(d) < turns-1 {
		t.Errorf("%d items deleted, want %d", len(d), turns-1)
	}
	if si.ConversationItems > 1 {
		t.Errorf("%d items left in the conversation", si.ConversationItems)
	}
	if err := s.Close(closeCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// Every client event marshals to the JSON the Realtime API documents (and
// that this package sent when its events were maps): the same fields, the
// same values, nothing more.
func TestClientEventsJSON(t *testing.T) {
	e, err := New(Options{APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	ch := engine.Channel{Source: "en", Target: "nl", Voice: "cedar", Mode: room.ModeInterpret}
	cases := []struct {
		ev   clientEvent
		want string
	}{
		{translationUpdate(e, engine.Channel{Source: "en", Target: "pt-BR"}),
			`{"type":"session.update","session":{"audio":{"input":{"transcription":{"model":"gpt-4o-mini-transcribe"}},"output":{"language":"pt"}}}}`},
		{realtimeUpdate(e, ch, "be an interpreter"),
			`{"type":"session.update","session":{"type":"realtime","instructions":"be an interpreter","output_modalities":["audio"],
			  "audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"transcription":{"model":"gpt-4o-mini-transcribe"},
			    "turn_detection":{"type":"server_vad","create_response":false,"interrupt_response":false,"silence_duration_ms":500}},
			  "output":{"format":{"type":"audio/pcm","rate":24000},"voice":"cedar"}}}}`},
		{&translationAppend{Audio: "AAA="}, `{"type":"session.input_audio_buffer.append","audio":"AAA="}`},
		{&sessionClose{}, `{"type":"session.close"}`},
		{&bufferAppend{Audio: "AAA="}, `{"type":"input_audio_buffer.append","audio":"AAA="}`},
		{&bufferCommit{}, `{"type":"input_audio_buffer.commit"}`},
		{outOfBandResponse("translate this", "item_1"),
			`{"type":"response.create","response":{"conversation":"none","output_modalities":["audio"],"instructions":"translate this",
			  "input":[{"type":"item_reference","id":"item_1"}]}}`},
		{audioItem("bci_1", []byte{0, 0}),
			`{"type":"conversation.item.create","item":{"id":"bci_1","type":"message","role":"user","content":[{"type":"input_audio","audio":"AAA="}]}}`},
		{&itemDelete{ItemID: "item_1"}, `{"type":"conversation.item.delete","item_id":"item_1"}`},
	}
	for _, c := range cases {
		h := c.ev.header()
		h.Type, h.EventID = c.ev.eventType(), "bc_1_1"
		data, err := json.Marshal(c.ev)
		if err != nil {
			t.Fatal(err)
		}
		var got, want map[string]any
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(c.want), &want); err != nil {
			t.Fatalf("%s: %v", c.want, err)
		}
		want["event_id"] = "bc_1_1"
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s marshals to\n%s\nwant\n%s", c.ev.eventType(), data, c.want)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func closeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A speaker who goes quiet (or whose speech the translator holds back) is
// topped up with silence only for Options.TopUp: enough for the last words
// to come out, after which the model's clock waits and nothing is billed.
// When speech comes back it is not owed the silence of the wait.
func TestQuietSpeakerIsToppedUpOnlyForTopUp(t *testing.T) {
	for _, target := range []string{"es", "nl"} { // translation kind, instructed kind
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			const topUp = 1500 * time.Millisecond
			fake := newFake(t, fakerealtime.Options{ResponseSpeed: 4})
			ch := engine.Channel{Room: "r", Source: "en", Target: target, Mode: room.ModeAuto}
			sink, f := openFed(t, fake, func(o *Options) { o.TopUp = topUp }, ch, 1)
			inputMs := func() int64 {
				var ms int64
				for _, si := range fake.Sessions() {
					ms += si.InputMs
				}
				return ms
			}
			f.play(t, fakerealtime.Speech("en", time.Second))
			sink.waitFor(t, 10*time.Second, "the first sentence", func() bool { return len(sink.finals(false)) == 1 })
			// Once the idle second and the top-up have passed, the input
			// holds the speech and at most that much silence.
			sink.waitFor(t, 10*time.Second, "the top-up to end", func() bool {
				return time.Since(f.clock) > speakerIdle+topUp+300*time.Millisecond
			})
			limit := int64((time.Second + speakerIdle + topUp + 400*time.Millisecond) / time.Millisecond)
			held := inputMs()
			if held > limit {
				t.Fatalf("%d ms of input after a 1 s sentence and a %v top-up, want at most %d", held, topUp, limit)
			}
			// Another two seconds of quiet add nothing.
			sink.waitFor(t, 5*time.Second, "two seconds to pass", func() bool {
				return time.Since(f.clock) > speakerIdle+topUp+2*time.Second
			})
			if now := inputMs(); now != held {
				t.Fatalf("input grew from %d to %d ms while the speaker was quiet beyond the top-up", held, now)
			}
			// Speech again: it is heard, and the wait is not filled in.
			f.clock = time.Now()
			f.play(t, fakerealtime.Speech("en", time.Second))
			sink.waitFor(t, 10*time.Second, "the second sentence", func() bool { return len(sink.finals(false)) == 2 })
			if grew := inputMs() - held; grew > int64((time.Second+speakerIdle+topUp+400*time.Millisecond)/time.Millisecond) {
				t.Fatalf("input grew by %d ms for a 1 s sentence: the wait was filled with silence", grew)
			}
		})
	}
}

// A key sent over ws:// to another machine travels in clear text: the
// engine says so once, at start; to this machine (tests, a local proxy)
// it says nothing.
func TestWarnsOnceOfAKeyInClearText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url  string
		warn bool
	}{
		{"ws://realtime.example.org/v1/realtime", true},
		{"http://10.0.0.7:8080/v1/realtime", true},
		{"ws://127.0.0.1:9000/v1/realtime", false},
		{"ws://localhost:9000/v1/realtime", false},
		{"ws://[::1]:9000/v1/realtime", false},
		{"wss://api.openai.com/v1/realtime", false},
	} {
		var logs bytes.Buffer
		if _, err := New(Options{APIKey: "sk-secret", RealtimeURL: tc.url, Log: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
			t.Fatal(err)
		}
		n := strings.Count(logs.String(), "clear text")
		if (n == 1) != tc.warn || n > 1 {
			t.Errorf("%s: %d warnings, want warn=%v", tc.url, n, tc.warn)
		}
		if strings.Contains(logs.String(), "sk-secret") {
			t.Errorf("%s: the key reached the log", tc.url)
		}
	}
}
