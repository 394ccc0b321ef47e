package fakerealtime_test

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	fr "github.com/babelcast/babelcast/test/fakerealtime"
)

func realtimeURL(s *fr.Server) string { return s.URL() + "?model=gpt-realtime" }

// vad is a server_vad turn detection with a short silence, so turns end quickly.
func vad(create, interrupt bool) map[string]any {
	return map[string]any{"type": "server_vad", "silence_duration_ms": 200, "prefix_padding_ms": 0,
		"threshold": 0.5, "create_response": create, "interrupt_response": interrupt}
}

// openRealtime dials /v1/realtime and configures an interpreter session.
func openRealtime(t *testing.T, s *fr.Server, instructions string, td any) *client {
	t.Helper()
	c, _ := connect(t, s, realtimeURL(s))
	c.send(map[string]any{"type": "session.update", "session": map[string]any{
		"type":              "realtime",
		"instructions":      instructions,
		"output_modalities": []string{"audio"},
		"audio": map[string]any{
			"input": map[string]any{
				"format":         map[string]any{"type": "audio/pcm", "rate": 24000},
				"turn_detection": td,
				"transcription":  map[string]any{"model": "gpt-4o-transcribe"},
			},
			"output": map[string]any{"format": map[string]any{"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
		},
	}})
	if up := c.next("session.updated", "error"); up.typ() != "session.updated" {
		t.Fatalf("session.update refused: %v", up)
	}
	return c
}

// openInstant opens an interpreter session on a new server that streams
// its responses at once, for tests of what a response holds, not its pace.
func openInstant(t *testing.T, instructions string, td any) (*fr.Server, *client) {
	t.Helper()
	s := newServer(t, fr.Options{ResponseSpeed: math.Inf(1)})
	return s, openRealtime(t, s, instructions, td)
}

// turn is speech then enough silence for a 200 ms server VAD to end it.
func turn(lang string, d time.Duration) []byte {
	return append(fr.Speech(lang, d), fr.Silence(300*time.Millisecond)...)
}

func TestRealtimeRefusesBetaHeader(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	h := bearer(s.APIKey())
	h.Set("OpenAI-Beta", "realtime=v1")
	c := dial(t, realtimeURL(s), h)
	ev := c.next("error", "session.created")
	if ev.typ() != "error" || ev.str("error", "code") != "beta_api_shape_disabled" {
		t.Fatalf("first event %v, want the beta refusal", ev)
	}
	if code := c.closed(); code != 4000 {
		t.Fatalf("close code %d, want 4000", code)
	}
}

func TestRealtimeAzureUsesAPIKeyHeader(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{Azure: true, APIKey: "azure-key"})
	if _, resp, err := websocket.DefaultDialer.Dial(s.AzureURL()+"?model=gpt-realtime", bearer("azure-key")); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bearer on Azure: %v %v, want 401", err, resp)
	}
	c := dial(t, s.AzureURL()+"?model=gpt-realtime", http.Header{"api-key": {"azure-key"}})
	if ev := c.next("session.created", "error"); ev.typ() != "session.created" {
		t.Fatalf("got %v", ev)
	}
}

func TestRealtimeSessionUpdateIsGAAndStrict(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	c, created := connect(t, s, realtimeURL(s))
	if created.str("session", "type") != "realtime" || created.num("session", "expires_at") < float64(time.Now().Unix()+3500) {
		t.Fatalf("session.created %v", created)
	}
	bad := []struct {
		session map[string]any
		code    string
		param   string
	}{
		{map[string]any{"instructions": "x"}, "missing_required_parameter", "session.type"},
		{map[string]any{"type": "realtime", "modalities": []string{"audio", "text"}}, "unknown_parameter", "session.modalities"},
		{map[string]any{"type": "realtime", "input_audio_format": "pcm16"}, "unknown_parameter", "session.input_audio_format"},
		{map[string]any{"type": "realtime", "voice": "alloy"}, "unknown_parameter", "session.voice"},
		{map[string]any{"type": "realtime", "temperature": 0.8}, "unknown_parameter", "session.temperature"},
		{map[string]any{"type": "realtime", "turn_detection": nil}, "unknown_parameter", "session.turn_detection"},
		{map[string]any{"type": "realtime", "audio": map[string]any{"output": map[string]any{"voice": "nova"}}}, "invalid_value", "session.audio.output.voice"},
		{map[string]any{"type": "realtime", "audio": map[string]any{"input": map[string]any{"format": map[string]any{"type": "audio/pcm", "rate": 16000}}}}, "invalid_value", "session.audio.input.format.rate"},
		{map[string]any{"type": "realtime", "audio": map[string]any{"input": map[string]any{"turn_detection": map[string]any{"type": "server_vad", "silence_ms": 200}}}}, "unknown_parameter", "session.audio.input.turn_detection.silence_ms"},
		{map[string]any{"type": "realtime", "output_modalities": []string{"audio", "text"}}, "invalid_value", "session.output_modalities"},
	}
	for _, b := range bad {
		c.send(map[string]any{"type": "session.update", "event_id": "u", "session": b.session})
		ev := c.next("error", "session.updated")
		if ev.typ() != "error" || ev.str("error", "code") != b.code || ev.str("error", "param") != b.param {
			t.Errorf("update %v: %v, want %s on %s", b.session, ev, b.code, b.param)
		}
	}
	// A refused update changes nothing, even the fields that were valid.
	c.send(map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime",
		"instructions": "Translate into French.", "modalities": []string{"audio"}}})
	c.next("error")
	c.send(map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime",
		"audio": map[string]any{"input": map[string]any{"turn_detection": nil}}}})
	up := c.next("session.updated", "error")
	if up.typ() != "session.updated" || up.str("session", "instructions") != "" {
		t.Fatalf("update after a refused one: %v", up)
	}
	if td := up["session"].(map[string]any)["audio"].(map[string]any)["input"].(map[string]any)["turn_detection"]; td != nil {
		t.Fatalf("turn_detection = %v after setting null", td)
	}
	c.send(map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime",
		"audio": map[string]any{"input": map[string]any{"turn_detection": vad(true, false)}}}})
	up = c.next("session.updated", "error")
	if up.num("session", "audio", "input", "turn_detection", "silence_duration_ms") != 200 {
		t.Fatalf("turn_detection not applied: %v", up)
	}
}

// turnDuringResponse opens an instructed session whose model answers 300 ms
// after a turn (then at once), speaks a turn and, as soon as its response
// is created, a second one, which ends while that response is still
// active. It returns the first response.created.
func turnDuringResponse(t *testing.T, instructions string, interrupt bool) (*fr.Server, *client, event) {
	t.Helper()
	s := newServer(t, fr.Options{ResponseDelay: 300 * time.Millisecond, ResponseSpeed: math.Inf(1)})
	c := openRealtime(t, s, instructions, vad(true, interrupt))
	c.appendAudio("input_audio_buffer.append", turn("en", 600*time.Millisecond))
	first := c.next("response.created")
	c.appendAudio("input_audio_buffer.append", turn("en", 600*time.Millisecond))
	return s, c, first
}

func TestRealtimeTurnDuringResponseGetsNoResponseWithoutInterrupt(t *testing.T) {
	t.Parallel()
	s, c, first := turnDuringResponse(t, "Interpret everything the speaker says into Spanish.", false)
	seen := c.barrier()
	if n := len(ofType(seen, "input_audio_buffer.committed")); n != 1 {
		t.Fatalf("second turn: %d commits in %v", n, typesOf(seen))
	}
	if n := len(ofType(seen, "response.created")); n != 0 {
		t.Fatalf("a turn that ended during a response got a response with interrupt_response:false")
	}
	done := c.next("response.done")
	if done.str("response", "id") != first.str("response", "id") || done.str("response", "status") != "completed" {
		t.Fatalf("first response ended %v", done)
	}
	if len(ofType(c.barrier(), "response.created")) != 0 || len(s.Responses()) != 1 {
		t.Fatalf("responses: %+v", s.Responses())
	}
	counts := s.Sessions()[0].AnswerCounts()
	si := s.Sessions()[0]
	if counts[si.Turns[0]] != 1 || counts[si.Turns[1]] != 0 {
		t.Fatalf("answer counts %v for turns %v", counts, si.Turns)
	}
}

func TestRealtimeSpeechCancelsResponseWithInterrupt(t *testing.T) {
	t.Parallel()
	s, c, first := turnDuringResponse(t, "Translate into German.", true)
	done := c.next("response.done")
	if done.str("response", "id") != first.str("response", "id") || done.str("response", "status") != "cancelled" ||
		done.str("response", "status_details", "reason") != "turn_detected" {
		t.Fatalf("first response: %v", done)
	}
	second, seen := c.until("response.done")
	if second.str("response", "status") != "completed" {
		t.Fatalf("second response: %v", second)
	}
	pcm := audioOf(t, ofType(seen, "response.output_audio.delta"))
	if fr.DetectLanguage(pcm, []string{"en", "es", "de", "fr"}) != "de" || ms(pcm) < 600 {
		t.Fatalf("second response spoke %d ms, German share %.2f", ms(pcm), fr.Goertzel(pcm, fr.ToneHz("de")))
	}
	if tr := ofType(seen, "response.output_audio_transcript.done"); len(tr) != 1 || tr[0].str("transcript") != "[de] sentence 2." {
		t.Fatalf("transcript done events %v", tr)
	}
	if s.CancelledResponses() != 1 {
		t.Fatalf("cancelled = %d", s.CancelledResponses())
	}
	if u := second.num("response", "usage", "input_tokens"); u <= first.num("response", "usage", "input_tokens") {
		t.Fatalf("input tokens %v", u)
	}
}

func TestRealtimeResponseCreateWhileActiveIsAnError(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{ResponseDelay: time.Second, ResponseSpeed: math.Inf(1)})
	c := openRealtime(t, s, "Translate into Italian.", vad(false, false))
	c.appendAudio("input_audio_buffer.append", turn("en", 400*time.Millisecond))
	c.next("input_audio_buffer.committed")
	c.send(map[string]any{"type": "response.create"})
	c.next("response.created")
	c.send(map[string]any{"type": "response.create", "event_id": "second"})
	ev := c.next("error")
	if ev.str("error", "code") != "conversation_already_has_active_response" || ev.str("error", "event_id") != "second" {
		t.Fatalf("got %v", ev)
	}
	c.send(map[string]any{"type": "response.cancel"})
	if done := c.next("response.done"); done.str("response", "status_details", "reason") != "client_cancelled" {
		t.Fatalf("cancel: %v", done)
	}
	c.send(map[string]any{"type": "response.cancel"})
	if ev := c.next("error"); ev.str("error", "code") != "response_cancel_not_active" {
		t.Fatalf("cancel without response: %v", ev)
	}
}

func TestRealtimeOutOfBandResponsesKeepContextFlat(t *testing.T) {
	t.Parallel()
	s, c := openInstant(t, "You are an interpreter. Translate from English into Brazilian Portuguese (pt-BR).", vad(false, false))

	var prev string
	var tokens []float64
	for i := 1; i <= 3; i++ {
		c.appendAudio("input_audio_buffer.append", turn("en", 500*time.Millisecond))
		item := c.next("input_audio_buffer.committed").str("item_id")
		if tr := c.next("conversation.item.input_audio_transcription.completed"); tr.str("transcript") == "" {
			t.Fatalf("no transcript: %v", tr)
		}
		c.send(map[string]any{"type": "response.create", "response": map[string]any{
			"conversation": "none",
			"input":        []any{map[string]any{"type": "item_reference", "id": item}},
			"metadata":     map[string]any{"turn": item},
		}})
		done, seen := c.until("response.done")
		if done.str("response", "status") != "completed" || done.str("response", "conversation_id") != "" ||
			done.str("response", "metadata", "turn") != item {
			t.Fatalf("turn %d: %v", i, done)
		}
		if n := len(ofType(seen, "conversation.item.added")); n != 0 {
			t.Fatalf("an out-of-band response added %d items to the conversation", n)
		}
		pcm := audioOf(t, ofType(seen, "response.output_audio.delta"))
		if fr.DetectLanguage(pcm, []string{"en", "es", "pt"}) != "pt" || ms(pcm) < 500 || ms(pcm) > 700 {
			t.Fatalf("turn %d: %d ms, Portuguese %.2f", i, ms(pcm), fr.Goertzel(pcm, fr.ToneHz("pt")))
		}
		tokens = append(tokens, done.num("response", "usage", "input_tokens"))
		if prev != "" {
			c.send(map[string]any{"type": "conversation.item.delete", "item_id": prev})
			if ev := c.next("conversation.item.deleted", "error"); ev.str("item_id") != prev {
				t.Fatalf("delete: %v", ev)
			}
		}
		prev = item
	}
	if tokens[0] != tokens[1] || tokens[1] != tokens[2] {
		t.Fatalf("input tokens %v: context grew", tokens)
	}
	if s.MaxResponseInputItems() != 1 {
		t.Fatalf("max response input items %d", s.MaxResponseInputItems())
	}
	si := s.Sessions()[0]
	for turn, n := range si.AnswerCounts() {
		if n != 1 {
			t.Fatalf("turn %s answered %d times", turn, n)
		}
	}
	if si.ConversationItems != 1 {
		t.Fatalf("%d items left in the conversation", si.ConversationItems)
	}

	// Referring to a deleted or unknown item is an error, and so is deleting it.
	c.send(map[string]any{"type": "response.create", "response": map[string]any{"conversation": "none",
		"input": []any{map[string]any{"type": "item_reference", "id": "item_nope"}}}})
	if ev := c.next("error", "response.created"); ev.typ() != "error" || ev.str("error", "param") != "response.input[0].id" {
		t.Fatalf("unknown reference: %v", ev)
	}
	c.send(map[string]any{"type": "conversation.item.delete", "item_id": "item_nope"})
	if ev := c.next("error", "conversation.item.deleted"); ev.typ() != "error" {
		t.Fatalf("deleting an unknown item: %v", ev)
	}
	c.send(map[string]any{"type": "response.create", "response": map[string]any{"conversation": "none", "modalities": []string{"audio"}}})
	if ev := c.next("error", "response.created"); ev.str("error", "code") != "unknown_parameter" {
		t.Fatalf("beta response field: %v", ev)
	}
}

func TestRealtimeDefaultConversationGrows(t *testing.T) {
	t.Parallel()
	s, c := openInstant(t, "Translate into Japanese.", vad(true, true))
	var tokens []float64
	for range 3 {
		c.appendAudio("input_audio_buffer.append", turn("en", 400*time.Millisecond))
		done := c.next("response.done")
		tokens = append(tokens, done.num("response", "usage", "input_tokens"))
	}
	if !(tokens[0] < tokens[1] && tokens[1] < tokens[2]) {
		t.Fatalf("input tokens %v should grow with the default conversation", tokens)
	}
	if s.MaxResponseInputItems() != 5 { // user, assistant, user, assistant, user
		t.Fatalf("max input items %d", s.MaxResponseInputItems())
	}
	c.barrier()
	if rl := s.Sessions()[0]; len(rl.Responses) != 3 || rl.Lang != "ja" {
		t.Fatalf("session %+v", rl)
	}
}

func TestRealtimeManualCommitAndBufferErrors(t *testing.T) {
	t.Parallel()
	_, c := openInstant(t, "Translate into Korean.", nil)
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	if ev := c.next("error"); ev.str("error", "code") != "input_audio_buffer_commit_empty" {
		t.Fatalf("empty commit: %v", ev)
	}
	c.appendAudio("input_audio_buffer.append", fr.Speech("en", 500*time.Millisecond))
	seen := c.barrier()
	if n := len(ofType(seen, "input_audio_buffer.speech_started")); n != 0 {
		t.Fatalf("VAD events with turn_detection null: %v", typesOf(seen))
	}
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	if ev := c.next("input_audio_buffer.committed"); ev["previous_item_id"] != nil {
		t.Fatalf("first commit: %v", ev)
	}
	if len(ofType(c.barrier(), "response.created")) != 0 {
		t.Fatal("a manual commit created a response")
	}
	c.appendAudio("input_audio_buffer.append", fr.Speech("en", 500*time.Millisecond))
	c.send(map[string]any{"type": "input_audio_buffer.clear"})
	c.next("input_audio_buffer.cleared")
	c.send(map[string]any{"type": "input_audio_buffer.commit"})
	if ev := c.next("error", "input_audio_buffer.committed"); ev.typ() != "error" {
		t.Fatalf("commit after clear: %v", ev)
	}
	c.send(map[string]any{"type": "response.create"})
	done := c.next("response.done")
	if done.str("response", "status") != "completed" || !strings.HasPrefix(done.str("response", "conversation_id"), "conv_") {
		t.Fatalf("response %v", done)
	}
	c.send(map[string]any{"type": "session.update", "session": map[string]any{"type": "realtime",
		"audio": map[string]any{"output": map[string]any{"voice": "cedar"}}}})
	if ev := c.next("error", "session.updated"); ev.str("error", "code") != "cannot_update_voice" {
		t.Fatalf("voice change after audio: %v", ev)
	}
}

func TestRealtimeResponseSpeaksTheInstructedLanguage(t *testing.T) {
	t.Parallel()
	_, c := openInstant(t, "Translate into Spanish.", vad(false, false))
	c.appendAudio("input_audio_buffer.append", turn("en", time.Second))
	item := c.next("input_audio_buffer.committed").str("item_id")
	c.send(map[string]any{"type": "response.create", "response": map[string]any{"conversation": "none",
		"instructions": "Translate into French.",
		"input":        []any{map[string]any{"type": "item_reference", "id": item}}}})
	_, seen := c.until("response.done")
	pcm := audioOf(t, ofType(seen, "response.output_audio.delta"))
	if g := fr.Goertzel(pcm, fr.ToneHz("fr")); g < 0.9 || fr.Goertzel(pcm, fr.ToneHz("es")) > 0.1 {
		t.Fatalf("response instructions: French share %.2f", g)
	}
	if got := textOf(ofType(seen, "response.output_audio_transcript.delta")); got != "[fr] sentence 1." {
		t.Fatalf("transcript %q", got)
	}
	if rl := c.next("rate_limits.updated"); len(rl["rate_limits"].([]any)) == 0 {
		t.Fatalf("rate limits %v", rl)
	}
}

func TestRealtimeRejectsUnknownClientEvents(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	c, _ := connect(t, s, realtimeURL(s))
	for _, typ := range []string{"session.input_audio_buffer.append", "response.audio.delta", "transcription_session.update"} {
		c.send(map[string]any{"type": typ})
		if ev := c.next("error"); ev.str("error", "code") != "invalid_value" || ev.str("error", "param") != "type" {
			t.Fatalf("%s: %v", typ, ev)
		}
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if ev := c.next("error"); ev.str("error", "code") != "invalid_json" {
		t.Fatalf("bad JSON: %v", ev)
	}
}
