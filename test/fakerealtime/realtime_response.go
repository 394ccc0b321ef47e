package fakerealtime

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// response is one model response.
type response struct {
	id           string
	auto         bool
	conversation string // auto or none
	context      []*item
	turns        []*item
	lang         string
	modality     string
	voice        string
	transcript   string
	words        []string
	wordsSent    int
	audioMs      int64
	sentMs       int64
	status       string
	reason       string
	inputTokens  int
	out          *item
	metadata     json.RawMessage
	cancel       chan struct{}
}

func (r *response) info(sessionID string) ResponseInfo {
	ri := ResponseInfo{ID: r.id, SessionID: sessionID, Auto: r.auto, Conversation: r.conversation,
		Status: r.status, Reason: r.reason, InputItems: len(r.context), InputTokens: r.inputTokens,
		AudioMs: r.audioMs, SentMs: r.sentMs, Lang: r.lang, Transcript: r.transcript}
	for _, t := range r.turns {
		ri.Turns = append(ri.Turns, t.id)
	}
	return ri
}

// responseParams is a parsed response.create.
type responseParams struct {
	conversation string
	input        []*item // nil: the default conversation
	hasInput     bool
	instructions *string
	modality     string
	voice        string
	metadata     json.RawMessage
}

func (rt *realtime) responseCreate(ev clientEvent) *apiError {
	top, e := ev.object("type", "event_id", "response")
	if e != nil {
		return e
	}
	p := responseParams{conversation: "auto"}
	if raw, ok := top["response"]; ok && !isNull(raw) {
		if p, e = rt.parseResponse(raw); e != nil {
			return e
		}
	}
	if rt.active != nil {
		return &apiError{"invalid_request_error", "conversation_already_has_active_response",
			fmt.Sprintf("Conversation already has an active response in progress: %s. Wait until the response is finished before creating a new one.", rt.active.id), ""}
	}
	rt.startResponse(p, false)
	return nil
}

func (rt *realtime) parseResponse(raw json.RawMessage) (responseParams, *apiError) {
	p := responseParams{conversation: "auto"}
	m, e := object(raw, "response", "conversation", "input", "instructions", "output_modalities", "audio",
		"metadata", "max_output_tokens", "tools", "tool_choice", "prompt")
	if e != nil {
		return p, e
	}
	if raw, ok := m["conversation"]; ok {
		if p.conversation, e = str(raw, "response.conversation"); e != nil {
			return p, e
		}
		if p.conversation != "auto" && p.conversation != "none" {
			return p, invalidValue("response.conversation", p.conversation, []string{"auto", "none"})
		}
	}
	if raw, ok := m["instructions"]; ok {
		s, e := str(raw, "response.instructions")
		if e != nil {
			return p, e
		}
		p.instructions = &s
	}
	if raw, ok := m["output_modalities"]; ok {
		if p.modality, e = parseModalities(raw, "response.output_modalities"); e != nil {
			return p, e
		}
	}
	if raw, ok := m["audio"]; ok {
		a, e := object(raw, "response.audio", "output")
		if e != nil {
			return p, e
		}
		if raw, ok := a["output"]; ok {
			o, e := object(raw, "response.audio.output", "format", "voice")
			if e != nil {
				return p, e
			}
			if e := checkFormat(o, "response.audio.output"); e != nil {
				return p, e
			}
			if raw, ok := o["voice"]; ok {
				if p.voice, e = parseVoice(raw, "response.audio.output.voice"); e != nil {
					return p, e
				}
			}
		}
	}
	if raw, ok := m["metadata"]; ok {
		p.metadata = raw
	}
	if raw, ok := m["input"]; ok {
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return p, invalidType("response.input", "an array", raw)
		}
		p.hasInput = true
		p.input = []*item{}
		for i, el := range elems {
			path := fmt.Sprintf("response.input[%d]", i)
			var head struct {
				Type string `json:"type"`
			}
			json.Unmarshal(el, &head)
			if head.Type == "item_reference" {
				r, e := object(el, path, "type", "id")
				if e != nil {
					return p, e
				}
				id, e := requiredStr(r, path, "id")
				if e != nil {
					return p, e
				}
				it, ok := rt.byID[id]
				if !ok {
					return p, noItem(id, join(path, "id"))
				}
				p.input = append(p.input, it)
				continue
			}
			it, e := parseItem(el, path)
			if e != nil {
				return p, e
			}
			p.input = append(p.input, it)
		}
	}
	return p, nil
}

// startResponse creates a response and starts streaming it.
func (rt *realtime) startResponse(p responseParams, auto bool) {
	r := &response{id: newID("resp_"), auto: auto, conversation: p.conversation, status: "in_progress",
		modality: rt.cfg.modality, voice: rt.cfg.voice, metadata: p.metadata, cancel: make(chan struct{})}
	if p.modality != "" {
		r.modality = p.modality
	}
	if p.voice != "" {
		r.voice = p.voice
	}
	instructions := rt.cfg.instructions
	if p.instructions != nil {
		instructions = *p.instructions
	}
	if p.hasInput {
		r.context = p.input
		for _, it := range p.input {
			if it.turn > 0 {
				r.turns = append(r.turns, it)
			}
		}
	} else {
		r.context = slices.Clone(rt.items)
		// The model answers what came after its last answer.
		for i := len(rt.items) - 1; i >= 0 && rt.items[i].role != "assistant"; i-- {
			if rt.items[i].turn > 0 {
				r.turns = slices.Insert(r.turns, 0, rt.items[i])
			}
		}
	}
	r.inputTokens = 4 + len(instructions)/4
	for _, it := range r.context {
		r.inputTokens += it.tokens()
	}
	r.lang = rt.ss.srv.opts.LanguageOf(instructions)
	tag := baseLang(r.lang)
	var parts []string
	for _, it := range r.context {
		if it.turn > 0 && slices.Contains(r.turns, it) {
			parts = append(parts, fmt.Sprintf("[%s] sentence %d.", tag, it.turn))
			r.audioMs += it.audioMs
		} else if p.hasInput && it.role == "user" && it.hasAudio {
			parts = append(parts, fmt.Sprintf("[%s] (audio).", tag))
			r.audioMs += it.audioMs
		} else if p.hasInput && it.role == "user" && it.text != "" {
			parts = append(parts, fmt.Sprintf("[%s] %s", tag, it.text))
			r.audioMs += int64(60 * len(it.text))
		}
	}
	if rt.offTopic > 0 {
		rt.offTopic--
		parts = []string{"Sure! Happy to help with that question. Here is what I think."}
		r.lang = "" // no language's tone: an answer, not a translation
	}
	if len(parts) == 0 {
		parts = []string{fmt.Sprintf("[%s] …", tag)}
	}
	r.transcript = strings.Join(parts, " ")
	r.words = strings.SplitAfter(r.transcript, " ")
	r.audioMs = max(r.audioMs, 300)
	r.out = &item{id: newID("item_"), role: "assistant", typ: "message", status: "in_progress",
		hasAudio: r.modality == "audio"}

	rt.ss.send(map[string]any{"type": "response.created", "response": rt.responseJSON(r, nil)})
	if r.conversation == "auto" {
		rt.insert(r.out, len(rt.items))
	} else {
		rt.byID[r.out.id] = r.out
	}
	rt.ss.send(map[string]any{"type": "response.output_item.added", "response_id": r.id, "output_index": 0, "item": r.out.json()})
	part := map[string]any{"type": "audio", "transcript": ""}
	if r.modality == "text" {
		part = map[string]any{"type": "text", "text": ""}
	}
	rt.ss.send(map[string]any{"type": "response.content_part.added", "response_id": r.id, "item_id": r.out.id,
		"output_index": 0, "content_index": 0, "part": part})
	rt.active = r
	rt.responses = append(rt.responses, r)

	srv := rt.ss.srv
	srv.mu.Lock()
	delay, speed := srv.responseDelay, srv.responseSpeed
	srv.mu.Unlock()
	srv.wg.Add(1)
	go rt.stream(r, delay, speed)
}

func (rt *realtime) responseJSON(r *response, usage any) map[string]any {
	var conv, details any
	if r.conversation == "auto" {
		conv = rt.conversation
	}
	if r.status == "cancelled" {
		details = map[string]any{"type": "cancelled", "reason": r.reason}
	}
	output := []any{}
	if r.status != "in_progress" {
		output = append(output, r.out.json())
	}
	return map[string]any{"id": r.id, "object": "realtime.response", "status": r.status,
		"status_details": details, "output": output, "conversation_id": conv,
		"output_modalities": []string{r.modality}, "max_output_tokens": "inf",
		"audio": map[string]any{"output": map[string]any{"format": pcmFormat, "voice": r.voice}},
		"usage": usage, "metadata": r.metadata}
}

// stream speaks a response at the configured speed, 100 ms a delta, with
// its transcript spread over the audio. It runs without the lock, taking it
// for every delta, and stops when the response is cancelled.
func (rt *realtime) stream(r *response, delay time.Duration, speed float64) {
	srv := rt.ss.srv
	defer srv.wg.Done()
	defer srv.notify()
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-r.cancel:
		case <-rt.ss.done:
		}
		return false
	}
	if !wait(delay) {
		return
	}
	chunks := int((r.audioMs + chunkMs - 1) / chunkMs)
	hz := ToneHz(r.lang)
	for i := range chunks {
		ms := min(chunkMs, r.audioMs-int64(i*chunkMs))
		if !math.IsInf(speed, 1) && !wait(time.Duration(float64(ms)*float64(time.Millisecond)/speed)) {
			return
		}
		rt.ss.mu.Lock()
		if r.status != "in_progress" || rt.ss.ending {
			rt.ss.mu.Unlock()
			return
		}
		base := map[string]any{"response_id": r.id, "item_id": r.out.id, "output_index": 0, "content_index": 0}
		if r.modality == "audio" {
			pcm := toneAt(hz, int(ms*samplesMs), 0.3, i*chunkMs*samplesMs)
			rt.ss.send(with(base, "type", "response.output_audio.delta", "delta", base64.StdEncoding.EncodeToString(pcm)))
			rt.audioOut = true
		}
		upto := (i + 1) * len(r.words) / chunks
		if d := strings.Join(r.words[r.wordsSent:upto], ""); d != "" {
			typ := "response.output_audio_transcript.delta"
			if r.modality == "text" {
				typ = "response.output_text.delta"
			}
			rt.ss.send(with(base, "type", typ, "delta", d))
		}
		r.wordsSent = upto
		r.sentMs += ms
		rt.ss.mu.Unlock()
	}
	rt.ss.mu.Lock()
	if r.status == "in_progress" && !rt.ss.ending {
		rt.finish(r, "completed", "")
	}
	rt.ss.mu.Unlock()
}

// with copies m and adds key/value pairs.
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// finish ends a response, completed or cancelled, with the done events
// for what was actually spoken.
func (rt *realtime) finish(r *response, status, reason string) {
	r.status, r.reason = status, reason
	close(r.cancel)
	if rt.active == r {
		rt.active = nil
	}
	spoken := strings.TrimSpace(strings.Join(r.words[:r.wordsSent], ""))
	r.out.transcript, r.out.audioMs = spoken, r.sentMs
	if r.modality == "text" {
		r.out.text, r.out.transcript = spoken, ""
	}
	r.out.status = "completed"
	if status != "completed" {
		r.out.status = "incomplete"
	}
	base := map[string]any{"response_id": r.id, "item_id": r.out.id, "output_index": 0, "content_index": 0}
	if r.modality == "audio" {
		rt.ss.send(with(base, "type", "response.output_audio.done"))
		rt.ss.send(with(base, "type", "response.output_audio_transcript.done", "transcript", spoken))
		rt.ss.send(with(base, "type", "response.content_part.done", "part", map[string]any{"type": "audio", "transcript": spoken}))
	} else {
		rt.ss.send(with(base, "type", "response.output_text.done", "text", spoken))
		rt.ss.send(with(base, "type", "response.content_part.done", "part", map[string]any{"type": "text", "text": spoken}))
	}
	rt.ss.send(map[string]any{"type": "response.output_item.done", "response_id": r.id, "output_index": 0, "item": r.out.json()})
	if r.conversation == "auto" && rt.indexOf(r.out.id) >= 0 {
		i := rt.indexOf(r.out.id)
		var prev any
		if i > 0 {
			prev = rt.items[i-1].id
		}
		rt.ss.send(map[string]any{"type": "conversation.item.done", "previous_item_id": prev, "item": r.out.json()})
	}
	textOut := len(spoken) / 4
	audioOut := int(r.sentMs / 50)
	usage := map[string]any{
		"total_tokens": r.inputTokens + textOut + audioOut, "input_tokens": r.inputTokens,
		"output_tokens": textOut + audioOut,
		"input_token_details": map[string]any{"text_tokens": r.inputTokens, "audio_tokens": 0, "image_tokens": 0,
			"cached_tokens": 0, "cached_tokens_details": map[string]any{"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
		"output_token_details": map[string]any{"text_tokens": textOut, "audio_tokens": audioOut},
	}
	rt.ss.send(map[string]any{"type": "response.done", "response": rt.responseJSON(r, usage)})
	rt.rateTokens += r.inputTokens + textOut + audioOut
	rt.ss.send(map[string]any{"type": "rate_limits.updated", "rate_limits": []any{
		map[string]any{"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
		map[string]any{"name": "tokens", "limit": 800000, "remaining": max(0, 800000-rt.rateTokens), "reset_seconds": 0.4},
	}})
}

func (rt *realtime) responseCancel(ev clientEvent) *apiError {
	m, e := ev.object("type", "event_id", "response_id")
	if e != nil {
		return e
	}
	id := ""
	if raw, ok := m["response_id"]; ok {
		if id, e = str(raw, "response_id"); e != nil {
			return e
		}
	}
	if rt.active == nil || (id != "" && id != rt.active.id) {
		return &apiError{"invalid_request_error", "response_cancel_not_active",
			"Cancellation failed: no active response found", ""}
	}
	rt.finish(rt.active, "cancelled", "client_cancelled")
	return nil
}
