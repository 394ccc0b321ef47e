package fakerealtime_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	fr "github.com/babelcast/babelcast/test/fakerealtime"
)

func translateURL(s *fr.Server) string { return s.URL() + "/translations?model=gpt-realtime-translate" }

// openTranslation dials the translation endpoint and sets the language.
func openTranslation(t *testing.T, s *fr.Server, lang string, transcribe bool) *client {
	t.Helper()
	c, _ := connect(t, s, translateURL(s))
	in := map[string]any{}
	if transcribe {
		in["transcription"] = map[string]any{"model": "gpt-realtime-whisper"}
	}
	c.send(map[string]any{"type": "session.update", "session": map[string]any{
		"audio": map[string]any{"input": in, "output": map[string]any{"language": lang}}}})
	up := c.next("session.updated", "error")
	if up.typ() != "session.updated" {
		t.Fatalf("session.update refused: %v", up)
	}
	return c
}

func TestTranslationWrongKeyIs401WithOpenAIError(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{APIKey: "sk-right"})
	for _, h := range []http.Header{bearer("sk-wrong-key-123"), nil} {
		_, resp, err := websocket.DefaultDialer.Dial(translateURL(s), h)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("dial with %v: err %v, resp %v; want HTTP 401", h, err, resp)
		}
		body, _ := io.ReadAll(resp.Body)
		var e struct {
			Error struct{ Type, Code, Message string }
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		if e.Error.Type != "invalid_request_error" || e.Error.Code != "invalid_api_key" || e.Error.Message == "" {
			t.Fatalf("error body = %+v", e.Error)
		}
		if strings.Contains(e.Error.Message, "sk-wrong-key-123") {
			t.Fatalf("the message repeats the whole key: %q", e.Error.Message)
		}
	}
	if s.Opened("") != 0 {
		t.Fatalf("a refused handshake opened a session")
	}
}

func TestTranslationUnknownModelIsAnError(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	c := dial(t, s.URL()+"/translations?model=gpt-realtime", bearer(s.APIKey()))
	ev := c.next("error", "session.created")
	if ev.typ() != "error" || ev.str("error", "code") != "model_not_found" {
		t.Fatalf("first event = %v, want error model_not_found", ev)
	}
	if code := c.closed(); code == websocket.CloseNormalClosure || code == -1 {
		t.Fatalf("close code = %d, want a policy close", code)
	}
}

func TestTranslationSessionCreatedAndStrictUpdate(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	c, created := connect(t, s, translateURL(s))
	sess := created["session"].(map[string]any)
	if !strings.HasPrefix(sess["id"].(string), "sess_") || sess["type"] != "translation" || sess["model"] != "gpt-realtime-translate" {
		t.Fatalf("session = %v", sess)
	}
	exp := time.Unix(int64(created.num("session", "expires_at")), 0)
	if d := time.Until(exp); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("expires_at is %v from now, want 60 minutes", d)
	}

	bad := []struct {
		update map[string]any
		code   string
		param  string
	}{
		{map[string]any{"instructions": "Translate into Spanish"}, "unknown_parameter", "session.instructions"},
		{map[string]any{"type": "translation"}, "unknown_parameter", "session.type"},
		{map[string]any{"audio": map[string]any{"output": map[string]any{"voice": "marin"}}}, "unknown_parameter", "session.audio.output.voice"},
		{map[string]any{"audio": map[string]any{"input": map[string]any{"turn_detection": nil}}}, "unknown_parameter", "session.audio.input.turn_detection"},
		{map[string]any{"audio": map[string]any{"output": map[string]any{"language": "nl"}}}, "invalid_value", "session.audio.output.language"},
		{map[string]any{"audio": map[string]any{"input": map[string]any{"noise_reduction": map[string]any{"type": "loud"}}}}, "invalid_value", "session.audio.input.noise_reduction.type"},
	}
	for _, b := range bad {
		c.send(map[string]any{"type": "session.update", "event_id": "ev1", "session": b.update})
		ev := c.next("error", "session.updated")
		if ev.typ() != "error" || ev.str("error", "type") != "invalid_request_error" ||
			ev.str("error", "code") != b.code || ev.str("error", "param") != b.param || ev.str("error", "event_id") != "ev1" {
			t.Errorf("update %v: got %v, want error %s on %s", b.update, ev, b.code, b.param)
		}
	}

	c.send(map[string]any{"type": "session.update", "session": map[string]any{"audio": map[string]any{
		"input":  map[string]any{"transcription": map[string]any{"model": "gpt-realtime-whisper"}, "noise_reduction": map[string]any{"type": "far_field"}},
		"output": map[string]any{"language": "es"}}}})
	up := c.next("session.updated", "error")
	if up.typ() != "session.updated" || up.str("session", "audio", "output", "language") != "es" {
		t.Fatalf("valid update answered %v", up)
	}
	if s.OpenedFor(fr.Translate, "es") != 1 || s.OpenNow(fr.Translate) != 1 {
		t.Fatalf("inspection: opened es %d, open %d", s.OpenedFor(fr.Translate, "es"), s.OpenNow(fr.Translate))
	}
}

func TestTranslationLagsInModelTimeAndCloseFlushes(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{}) // 600 ms model-time delay
	c := openTranslation(t, s, "es", true)

	c.appendAudio("session.input_audio_buffer.append", fr.Speech("en", time.Second))
	before := c.barrier()
	early := ofType(before, "session.output_audio.delta")
	// Frames ending at 200 and 400 ms are due by 1000 ms; 600..1000 wait.
	if got := ms(audioOf(t, early)); got != 400 {
		t.Fatalf("after 1 s of speech and no more audio, %d ms of translation came out, want 400 (the tail waits)", got)
	}
	if src := textOf(ofType(before, "session.input_transcript.delta")); src != "source sentence 1" {
		t.Fatalf("input transcript so far %q", src)
	}

	c.send(map[string]any{"type": "session.close"})
	_, rest := c.until("session.closed")
	all := append(early, ofType(rest, "session.output_audio.delta")...)
	pcm := audioOf(t, all)
	if ms(pcm) != 1000 {
		t.Fatalf("translated %d ms of 1000 ms of speech", ms(pcm))
	}
	if g := fr.Goertzel(pcm, fr.ToneHz("es")); g < 0.9 {
		t.Fatalf("Spanish tone carries %.2f of the output", g)
	}
	if lang := fr.DetectLanguage(pcm, []string{"en", "es", "fr", "de"}); lang != "es" {
		t.Fatalf("output sounds like %q", lang)
	}
	for i, e := range all {
		if e.num("elapsed_ms") != float64(200*i) {
			t.Fatalf("delta %d elapsed_ms = %v", i, e["elapsed_ms"])
		}
	}
	if out := textOf(ofType(append(before, rest...), "session.output_transcript.delta")); out != "[es] sentence 1." {
		t.Fatalf("output transcript %q", out)
	}
	if src := textOf(ofType(append(before, rest...), "session.input_transcript.delta")); src != "source sentence 1." {
		t.Fatalf("input transcript %q", src)
	}
	if code := c.closed(); code != websocket.CloseNormalClosure {
		t.Fatalf("close code %d after session.closed", code)
	}
	// The server notes the session's end once it has the reply to its
	// close, which may come after the client has seen the close.
	s.WaitUntil(5*time.Second, func() bool { return s.OpenNow("") == 0 })
	si := s.Sessions()[0]
	if si.Open || si.OutputMs != 1000 || si.InputMs != 1000 {
		t.Fatalf("session info %+v", si)
	}
}

func TestTranslationSilenceReleasesTheTailAndSplitsSentences(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	c := openTranslation(t, s, "de", false)
	pcm := append(fr.Speech("en", 600*time.Millisecond), fr.Silence(600*time.Millisecond)...)
	pcm = append(pcm, fr.Speech("en", 400*time.Millisecond)...)
	pcm = append(pcm, fr.Silence(time.Second)...)
	c.appendAudio("session.input_audio_buffer.append", pcm)
	seen := c.barrier()
	if got := ms(audioOf(t, ofType(seen, "session.output_audio.delta"))); got != 1000 {
		t.Fatalf("with silence appended, %d ms of 1000 ms of speech came out", got)
	}
	if out := textOf(ofType(seen, "session.output_transcript.delta")); out != "[de] sentence 1. [de] sentence 2." {
		t.Fatalf("output transcript %q", out)
	}
	if n := len(ofType(seen, "session.input_transcript.delta")); n != 0 {
		t.Fatalf("%d input transcript deltas without audio.input.transcription", n)
	}
}

func TestTranslationRejectsBadAppends(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	c := openTranslation(t, s, "fr", false)
	cases := []struct {
		ev   map[string]any
		code string
	}{
		{map[string]any{"type": "session.input_audio_buffer.append", "audio": "%%%not base64"}, "invalid_value"},
		{map[string]any{"type": "session.input_audio_buffer.append"}, "missing_required_parameter"},
		{map[string]any{"type": "input_audio_buffer.append", "audio": ""}, "invalid_value"}, // the realtime name
	}
	for _, cs := range cases {
		c.send(cs.ev)
		if ev := c.next("error"); ev.str("error", "code") != cs.code {
			t.Errorf("%v: error %v, want %s", cs.ev, ev, cs.code)
		}
	}
	// The session survives its client's mistakes.
	c.appendAudio("session.input_audio_buffer.append", fr.Speech("en", 400*time.Millisecond))
	c.send(map[string]any{"type": "session.close"})
	if _, seen := c.until("session.closed"); len(ofType(seen, "session.output_audio.delta")) != 2 {
		t.Fatalf("after errors the session translated %v", typesOf(seen))
	}
}

func TestTranslationRefusesAppendsOver15MiB(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("sends 15 MiB")
	}
	s := newServer(t, fr.Options{})
	c := openTranslation(t, s, "fr", false)
	huge := `{"type":"session.input_audio_buffer.append","audio":"` + strings.Repeat("A", 15<<20+4) + `"}`
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(huge)); err != nil {
		t.Fatal(err)
	}
	if ev := c.next("error"); ev.str("error", "code") != "string_above_max_length" {
		t.Errorf("15 MiB + 4 append: %v", ev)
	}
	c.barrier() // the session goes on
}

func TestTranslationStaysSilentOnTargetLanguage(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{SilentOnTargetLanguage: true})
	c := openTranslation(t, s, "es", false)
	c.appendAudio("session.input_audio_buffer.append", fr.Speech("es", 600*time.Millisecond))
	c.appendAudio("session.input_audio_buffer.append", fr.Speech("en", 600*time.Millisecond))
	c.send(map[string]any{"type": "session.close"})
	_, seen := c.until("session.closed")
	if got := ms(audioOf(t, ofType(seen, "session.output_audio.delta"))); got != 600 {
		t.Fatalf("translated %d ms; want only the 600 ms not already in Spanish", got)
	}
}

func TestTranslationRecordsClientEvents(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	c := openTranslation(t, s, "ja", false)
	c.appendAudio("session.input_audio_buffer.append", fr.Silence(400*time.Millisecond))
	c.send(map[string]any{"type": "session.input_audio_buffer.append", "audio": "AAAA"}) // 3 bytes: an odd length is the client's problem
	c.send(map[string]any{"type": "session.input_audio_buffer.append", "audio": "AAA="})
	c.send(map[string]any{"type": "session.close"})
	c.next("session.closed")
	c.closed()
	if !s.WaitUntil(5*time.Second, func() bool { return s.OpenNow("") == 0 }) {
		t.Fatal("session still open after session.closed")
	}
	si := s.Sessions()[0]
	want := []string{"session.update", "session.input_audio_buffer.append", "session.input_audio_buffer.append",
		"session.input_audio_buffer.append", "session.input_audio_buffer.append", "session.close"}
	if got := si.EventTypes(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("recorded %v, want %v", got, want)
	}
	if !strings.Contains(string(si.Events[1].Raw), `"audio_bytes":9600`) || !strings.Contains(string(si.Events[3].Raw), `"audio_bytes":3`) ||
		!strings.Contains(string(si.Events[4].Raw), `"audio_bytes":2`) || si.Lang != "ja" || si.CloseReason != "session.close" {
		t.Fatalf("session info: raw %s lang %q reason %q", si.Events[1].Raw, si.Lang, si.CloseReason)
	}
}
