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

// Voices the GA endpoint accepts for audio.output.voice.
var Voices = []string{"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}

// vadBlock is the server VAD's analysis block: 20 ms.
const (
	vadSamples = SampleRate / 50
	vadBytes   = 2 * vadSamples
	samplesMs  = SampleRate / 1000
	chunkMs    = 100 // response audio delta length
)

// turnDetection is audio.input.turn_detection; nil in rtConfig means off.
type turnDetection struct {
	typ               string // server_vad or semantic_vad
	threshold         float64
	prefixMs          int
	silenceMs         int
	idleMs            *int
	createResponse    bool
	interruptResponse bool
	eagerness         string
}

func defaultTurnDetection(typ string) *turnDetection {
	return &turnDetection{typ: typ, threshold: 0.5, prefixMs: 300, silenceMs: 500,
		createResponse: true, interruptResponse: true, eagerness: "auto"}
}

func (td *turnDetection) json() any {
	if td == nil {
		return nil
	}
	if td.typ == "semantic_vad" {
		return map[string]any{"type": td.typ, "eagerness": td.eagerness,
			"create_response": td.createResponse, "interrupt_response": td.interruptResponse}
	}
	var idle any
	if td.idleMs != nil {
		idle = *td.idleMs
	}
	return map[string]any{"type": td.typ, "threshold": td.threshold, "prefix_padding_ms": td.prefixMs,
		"silence_duration_ms": td.silenceMs, "idle_timeout_ms": idle,
		"create_response": td.createResponse, "interrupt_response": td.interruptResponse}
}

// rtConfig is a realtime session's configuration.
type rtConfig struct {
	instructions  string
	modality      string // audio or text
	voice         string
	speed         float64
	transcription map[string]any
	noise         map[string]any
	td            *turnDetection
	passthrough   map[string]json.RawMessage // accepted, echoed, otherwise ignored
}

// item is a conversation item.
type item struct {
	id         string
	role       string // user, assistant, system
	typ        string // message, function_call, function_call_output
	status     string
	audioMs    int64
	text       string // input_text / output_text content
	transcript string
	turn       int // > 0: the n-th user audio turn of the session
	hasAudio   bool
}

func (it *item) json() map[string]any {
	m := map[string]any{"id": it.id, "object": "realtime.item", "type": it.typ, "status": it.status}
	if it.typ != "message" {
		return m
	}
	m["role"] = it.role
	var content []any
	switch {
	case it.role == "assistant" && it.hasAudio:
		content = append(content, map[string]any{"type": "output_audio", "transcript": it.transcript})
	case it.role == "assistant":
		content = append(content, map[string]any{"type": "output_text", "text": it.text})
	case it.hasAudio:
		content = append(content, map[string]any{"type": "input_audio", "transcript": nilIfEmpty(it.transcript)})
	default:
		content = append(content, map[string]any{"type": "input_text", "text": it.text})
	}
	m["content"] = content
	return m
}

// tokens is the fake's token count of an item in a model's context.
func (it *item) tokens() int {
	n := 4 + len(it.text)/4 + len(it.transcript)/4
	if it.hasAudio {
		if it.role == "assistant" {
			n += int(it.audioMs / 50)
		} else {
			n += int(it.audioMs / 100)
		}
	}
	return n
}

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

// realtime is a session on /v1/realtime (GA protocol).
type realtime struct {
	ss  *session
	cfg rtConfig

	items []*item          // the default conversation
	byID  map[string]*item // items that can be referenced: conversation and out-of-band output
	turns []string

	total     int64  // samples appended
	vadPos    int64  // samples the VAD has analysed
	bufStart  int64  // first sample of the input buffer
	partial   []byte // appended bytes short of a VAD block
	speaking  bool
	speechAt  int64 // first sample of the turn (with prefix padding)
	silence   int64 // samples of silence since speech
	pendingID string

	active       *response
	responses    []*response
	offTopic     int
	audioOut     bool // assistant audio exists: the voice is fixed
	rateTokens   int
	conversation string
}

func newRealtime(ss *session) *realtime {
	return &realtime{ss: ss, byID: map[string]*item{}, conversation: newID("conv_"),
		cfg: rtConfig{modality: "audio", voice: "alloy", speed: 1, td: defaultTurnDetection("server_vad"),
			passthrough: map[string]json.RawMessage{}}}
}

func (rt *realtime) lang() string { return rt.ss.srv.opts.LanguageOf(rt.cfg.instructions) }

func (rt *realtime) fill(si *SessionInfo) {
	si.InputMs = rt.total / samplesMs
	si.Instructions = rt.cfg.instructions
	si.Turns = slices.Clone(rt.turns)
	si.ConversationItems = len(rt.items)
	for _, r := range rt.responses {
		si.Responses = append(si.Responses, r.info(rt.ss.id))
	}
}

var pcmFormat = map[string]any{"type": "audio/pcm", "rate": SampleRate}

func (rt *realtime) sessionObject() map[string]any {
	c := rt.cfg
	m := map[string]any{
		"type": "realtime", "object": "realtime.session", "id": rt.ss.id, "model": rt.ss.model,
		"expires_at": rt.ss.expiresAtUnix(), "output_modalities": []string{c.modality},
		"instructions": c.instructions, "tools": []any{}, "tool_choice": "auto",
		"max_output_tokens": "inf", "tracing": nil, "truncation": "auto", "prompt": nil, "include": nil,
		"audio": map[string]any{
			"input": map[string]any{"format": pcmFormat, "transcription": c.transcription,
				"noise_reduction": c.noise, "turn_detection": c.td.json()},
			"output": map[string]any{"format": pcmFormat, "voice": c.voice, "speed": c.speed},
		},
	}
	for k, v := range c.passthrough {
		m[k] = v
	}
	return m
}

var realtimeEvents = []string{"session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
	"input_audio_buffer.clear", "conversation.item.create", "conversation.item.retrieve",
	"conversation.item.truncate", "conversation.item.delete", "response.create", "response.cancel"}

func (rt *realtime) handle(ev clientEvent) {
	var e *apiError
	switch ev.typ {
	case "session.update":
		e = rt.update(ev)
	case "input_audio_buffer.append":
		e = rt.appendAudio(ev)
	case "input_audio_buffer.commit":
		e = rt.commitManual(ev)
	case "input_audio_buffer.clear":
		if _, e = ev.object("type", "event_id"); e == nil {
			rt.clearBuffer()
			rt.ss.send(map[string]any{"type": "input_audio_buffer.cleared"})
		}
	case "conversation.item.create":
		e = rt.createItem(ev)
	case "conversation.item.retrieve":
		e = rt.retrieveItem(ev)
	case "conversation.item.truncate":
		e = rt.truncateItem(ev)
	case "conversation.item.delete":
		e = rt.deleteItem(ev)
	case "response.create":
		e = rt.responseCreate(ev)
	case "response.cancel":
		e = rt.responseCancel(ev)
	default:
		e = invalidValue("type", ev.typ, realtimeEvents)
	}
	if e != nil {
		rt.ss.fail(e, ev)
	}
}

// update applies a GA session.update all or nothing.
func (rt *realtime) update(ev clientEvent) *apiError {
	top, e := ev.object("type", "event_id", "session")
	if e != nil {
		return e
	}
	s, e := requiredObject(top, "", "session", "type", "model", "instructions", "output_modalities", "audio",
		"tools", "tool_choice", "max_output_tokens", "tracing", "truncation", "prompt", "include")
	if e != nil {
		return e
	}
	typ, e := requiredStr(s, "session", "type")
	if e != nil {
		return e
	}
	if typ != "realtime" {
		return invalidValue("session.type", typ, []string{"realtime"})
	}
	c := rt.cfg
	c.passthrough = map[string]json.RawMessage{}
	for k, v := range rt.cfg.passthrough {
		c.passthrough[k] = v
	}
	if raw, ok := s["model"]; ok {
		m, e := str(raw, "session.model")
		if e != nil {
			return e
		}
		if m != rt.ss.model {
			return &apiError{"invalid_request_error", "invalid_value",
				"The session model cannot be changed with session.update.", "session.model"}
		}
	}
	if raw, ok := s["instructions"]; ok {
		if c.instructions, e = str(raw, "session.instructions"); e != nil {
			return e
		}
	}
	if raw, ok := s["output_modalities"]; ok {
		if c.modality, e = parseModalities(raw, "session.output_modalities"); e != nil {
			return e
		}
	}
	for _, k := range []string{"tools", "tool_choice", "max_output_tokens", "tracing", "truncation", "prompt", "include"} {
		if raw, ok := s[k]; ok {
			c.passthrough[k] = raw
		}
	}
	if raw, ok := s["audio"]; ok {
		if e := rt.updateAudio(&c, raw); e != nil {
			return e
		}
	}
	rt.cfg = c
	rt.ss.send(map[string]any{"type": "session.updated", "session": rt.sessionObject()})
	return nil
}

func parseModalities(raw json.RawMessage, path string) (string, *apiError) {
	var mods []string
	if err := json.Unmarshal(raw, &mods); err != nil {
		return "", invalidType(path, "an array of strings", raw)
	}
	if len(mods) != 1 || (mods[0] != "audio" && mods[0] != "text") {
		return "", &apiError{"invalid_request_error", "invalid_value",
			fmt.Sprintf("Invalid '%s': expected exactly one of 'audio' or 'text'.", path), path}
	}
	return mods[0], nil
}

// parseFormat accepts {"type":"audio/pcm","rate":24000}, the only format
// the fake streams.
func parseFormat(raw json.RawMessage, path string) *apiError {
	m, e := object(raw, path, "type", "rate")
	if e != nil {
		return e
	}
	typ, e := requiredStr(m, path, "type")
	if e != nil {
		return e
	}
	switch typ {
	case "audio/pcm":
	case "audio/pcmu", "audio/pcma":
		return &apiError{"invalid_request_error", "invalid_value",
			fmt.Sprintf("fakerealtime streams only audio/pcm; '%s' is valid for the real API but not supported here.", typ), join(path, "type")}
	default:
		return invalidValue(join(path, "type"), typ, []string{"audio/pcm", "audio/pcmu", "audio/pcma"})
	}
	if raw, ok := m["rate"]; ok {
		rate, e := integer(raw, join(path, "rate"), 0, math.MaxInt32)
		if e != nil {
			return e
		}
		if rate != SampleRate {
			return invalidValue(join(path, "rate"), fmt.Sprint(rate), []string{"24000"})
		}
	}
	return nil
}

func (rt *realtime) updateAudio(c *rtConfig, raw json.RawMessage) *apiError {
	audio, e := object(raw, "session.audio", "input", "output")
	if e != nil {
		return e
	}
	if raw, ok := audio["input"]; ok {
		in, e := object(raw, "session.audio.input", "format", "transcription", "noise_reduction", "turn_detection")
		if e != nil {
			return e
		}
		if raw, ok := in["format"]; ok {
			if e := parseFormat(raw, "session.audio.input.format"); e != nil {
				return e
			}
		}
		if raw, ok := in["transcription"]; ok {
			if c.transcription, e = parseTranscription(raw, "session.audio.input.transcription", true); e != nil {
				return e
			}
		}
		if raw, ok := in["noise_reduction"]; ok {
			if c.noise, e = parseNoiseReduction(raw, "session.audio.input.noise_reduction", false, nil); e != nil {
				return e
			}
		}
		if raw, ok := in["turn_detection"]; ok {
			if c.td, e = parseTurnDetection(raw, "session.audio.input.turn_detection"); e != nil {
				return e
			}
		}
	}
	if raw, ok := audio["output"]; ok {
		out, e := object(raw, "session.audio.output", "format", "voice", "speed")
		if e != nil {
			return e
		}
		if raw, ok := out["format"]; ok {
			if e := parseFormat(raw, "session.audio.output.format"); e != nil {
				return e
			}
		}
		if raw, ok := out["voice"]; ok {
			v, e := parseVoice(raw, "session.audio.output.voice")
			if e != nil {
				return e
			}
			if v != rt.cfg.voice && rt.audioOut {
				return &apiError{"invalid_request_error", "cannot_update_voice",
					"Cannot update a conversation's voice if assistant audio is present.", "session.audio.output.voice"}
			}
			c.voice = v
		}
		if raw, ok := out["speed"]; ok {
			if c.speed, e = number(raw, "session.audio.output.speed", 0.25, 1.5); e != nil {
				return e
			}
		}
	}
	return nil
}

func parseVoice(raw json.RawMessage, path string) (string, *apiError) {
	v, e := str(raw, path)
	if e != nil {
		return "", e
	}
	if !slices.Contains(Voices, v) {
		return "", invalidValue(path, v, Voices)
	}
	return v, nil
}

// parseTurnDetection reads turn_detection: null, or a whole new server_vad
// or semantic_vad object whose missing fields take their defaults.
func parseTurnDetection(raw json.RawMessage, path string) (*turnDetection, *apiError) {
	if isNull(raw) {
		return nil, nil
	}
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, invalidType(path, "an object", raw)
	}
	if head.Type == nil {
		return nil, missing(join(path, "type"))
	}
	var m map[string]json.RawMessage
	var e *apiError
	switch *head.Type {
	case "server_vad":
		m, e = object(raw, path, "type", "threshold", "prefix_padding_ms", "silence_duration_ms",
			"create_response", "interrupt_response", "idle_timeout_ms")
	case "semantic_vad":
		m, e = object(raw, path, "type", "eagerness", "create_response", "interrupt_response")
	default:
		return nil, invalidValue(join(path, "type"), *head.Type, []string{"server_vad", "semantic_vad"})
	}
	if e != nil {
		return nil, e
	}
	td := defaultTurnDetection(*head.Type)
	if raw, ok := m["threshold"]; ok {
		if td.threshold, e = number(raw, join(path, "threshold"), 0, 1); e != nil {
			return nil, e
		}
	}
	if raw, ok := m["prefix_padding_ms"]; ok {
		if td.prefixMs, e = integer(raw, join(path, "prefix_padding_ms"), 0, 10000); e != nil {
			return nil, e
		}
	}
	if raw, ok := m["silence_duration_ms"]; ok {
		if td.silenceMs, e = integer(raw, join(path, "silence_duration_ms"), 0, 10000); e != nil {
			return nil, e
		}
	}
	if raw, ok := m["idle_timeout_ms"]; ok && !isNull(raw) {
		idle, e := integer(raw, join(path, "idle_timeout_ms"), 5000, 30000)
		if e != nil {
			return nil, e
		}
		td.idleMs = &idle
	}
	if raw, ok := m["create_response"]; ok {
		if td.createResponse, e = boolean(raw, join(path, "create_response")); e != nil {
			return nil, e
		}
	}
	if raw, ok := m["interrupt_response"]; ok {
		if td.interruptResponse, e = boolean(raw, join(path, "interrupt_response")); e != nil {
			return nil, e
		}
	}
	if raw, ok := m["eagerness"]; ok {
		s, e := str(raw, join(path, "eagerness"))
		if e != nil {
			return nil, e
		}
		if !slices.Contains([]string{"low", "medium", "high", "auto"}, s) {
			return nil, invalidValue(join(path, "eagerness"), s, []string{"low", "medium", "high", "auto"})
		}
		td.eagerness = s
	}
	return td, nil
}

// appendAudio adds audio to the input buffer and runs the server VAD.
func (rt *realtime) appendAudio(ev clientEvent) *apiError {
	m, e := ev.object("type", "event_id", "audio")
	if e != nil {
		return e
	}
	pcm, e := decodeAudio(m["audio"], "audio")
	if e != nil {
		return e
	}
	rt.partial = append(rt.partial, pcm...)
	rt.total += int64(len(pcm) / 2) // an odd trailing byte is the client's bug; the sample count rounds down
	n := 0
	for ; n+vadBytes <= len(rt.partial); n += vadBytes {
		rt.vad(rt.partial[n : n+vadBytes])
	}
	rt.partial = append(rt.partial[:0], rt.partial[n:]...)
	return nil
}

// vad analyses one 20 ms block: speech_started when energy rises, and after
// silence_duration_ms of silence speech_stopped, a commit and, with
// create_response, a response unless one is active.
func (rt *realtime) vad(block []byte) {
	start := rt.vadPos
	rt.vadPos += vadSamples
	td := rt.cfg.td
	if td == nil {
		return
	}
	threshold := rt.ss.srv.opts.SpeechRMS * td.threshold / 0.5
	silenceMs := td.silenceMs
	if td.typ == "semantic_vad" {
		silenceMs = 500
	}
	if RMS(block) >= threshold {
		rt.silence = 0
		if rt.speaking {
			return
		}
		rt.speaking = true
		rt.speechAt = max(rt.bufStart, start-int64(td.prefixMs*samplesMs))
		rt.pendingID = newID("item_")
		rt.ss.send(map[string]any{"type": "input_audio_buffer.speech_started",
			"audio_start_ms": rt.speechAt / samplesMs, "item_id": rt.pendingID})
		if td.interruptResponse && rt.active != nil && rt.active.conversation == "auto" {
			rt.finish(rt.active, "cancelled", "turn_detected")
		}
		return
	}
	if !rt.speaking {
		return
	}
	rt.silence += vadSamples
	if rt.silence < int64(silenceMs*samplesMs) {
		return
	}
	end := rt.vadPos
	rt.speaking = false
	rt.ss.send(map[string]any{"type": "input_audio_buffer.speech_stopped",
		"audio_end_ms": end / samplesMs, "item_id": rt.pendingID})
	rt.commit(rt.pendingID, (end-rt.speechAt)/samplesMs)
	rt.bufStart = end
	if td.createResponse && rt.active == nil {
		rt.startResponse(responseParams{conversation: "auto"}, true)
	}
	// With a response active and interrupt_response false the turn gets no
	// response at all, exactly as the real API behaves.
}

// commit turns the input buffer into a user audio item.
func (rt *realtime) commit(id string, ms int64) {
	prev := rt.lastItemID()
	rt.ss.send(map[string]any{"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": id})
	n := len(rt.turns) + 1
	it := &item{id: id, role: "user", typ: "message", status: "completed", audioMs: ms, hasAudio: true,
		turn: n, transcript: fmt.Sprintf("source sentence %d.", n)}
	rt.turns = append(rt.turns, id)
	rt.insert(it, len(rt.items))
	if rt.cfg.transcription != nil {
		rt.ss.send(map[string]any{"type": "conversation.item.input_audio_transcription.delta",
			"item_id": id, "content_index": 0, "delta": it.transcript})
		rt.ss.send(map[string]any{"type": "conversation.item.input_audio_transcription.completed",
			"item_id": id, "content_index": 0, "transcript": it.transcript,
			"usage": map[string]any{"type": "duration", "seconds": float64(ms) / 1000}})
	}
}

// insert adds an item to the default conversation at index i and says so.
func (rt *realtime) insert(it *item, i int) {
	var prev any
	if i > 0 {
		prev = rt.items[i-1].id
	}
	rt.items = slices.Insert(rt.items, i, it)
	rt.byID[it.id] = it
	rt.ss.send(map[string]any{"type": "conversation.item.added", "previous_item_id": prev, "item": it.json()})
	if it.status != "in_progress" {
		rt.ss.send(map[string]any{"type": "conversation.item.done", "previous_item_id": prev, "item": it.json()})
	}
}

func (rt *realtime) lastItemID() any {
	if len(rt.items) == 0 {
		return nil
	}
	return rt.items[len(rt.items)-1].id
}

func (rt *realtime) bufferMs() float64 { return float64(rt.total-rt.bufStart) / samplesMs }

func (rt *realtime) clearBuffer() {
	rt.bufStart, rt.vadPos, rt.partial = rt.total, rt.total, rt.partial[:0]
	rt.speaking, rt.silence = false, 0
}

func (rt *realtime) commitManual(ev clientEvent) *apiError {
	if _, e := ev.object("type", "event_id"); e != nil {
		return e
	}
	if ms := rt.bufferMs(); ms < 100 {
		return &apiError{"invalid_request_error", "input_audio_buffer_commit_empty",
			fmt.Sprintf("Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has %.2fms of audio.", ms), ""}
	}
	id := rt.pendingID
	if !rt.speaking {
		id = newID("item_")
	}
	ms := int64(rt.bufferMs())
	rt.clearBuffer()
	rt.commit(id, ms)
	return nil
}

func (rt *realtime) indexOf(id string) int {
	return slices.IndexFunc(rt.items, func(it *item) bool { return it.id == id })
}

func (rt *realtime) itemIDParam(ev clientEvent, allowed ...string) (map[string]json.RawMessage, string, *apiError) {
	m, e := ev.object(append([]string{"type", "event_id", "item_id"}, allowed...)...)
	if e != nil {
		return nil, "", e
	}
	id, e := requiredStr(m, "", "item_id")
	return m, id, e
}

func noItem(id, path string) *apiError {
	return &apiError{"invalid_request_error", "item_not_found",
		fmt.Sprintf("Item with item_id '%s' not found.", id), path}
}

func (rt *realtime) deleteItem(ev clientEvent) *apiError {
	_, id, e := rt.itemIDParam(ev)
	if e != nil {
		return e
	}
	i := rt.indexOf(id)
	if i < 0 {
		return noItem(id, "item_id")
	}
	rt.items = slices.Delete(rt.items, i, i+1)
	delete(rt.byID, id)
	rt.ss.send(map[string]any{"type": "conversation.item.deleted", "item_id": id})
	return nil
}

func (rt *realtime) retrieveItem(ev clientEvent) *apiError {
	_, id, e := rt.itemIDParam(ev)
	if e != nil {
		return e
	}
	it, ok := rt.byID[id]
	if !ok {
		return noItem(id, "item_id")
	}
	rt.ss.send(map[string]any{"type": "conversation.item.retrieved", "item": it.json()})
	return nil
}

func (rt *realtime) truncateItem(ev clientEvent) *apiError {
	m, id, e := rt.itemIDParam(ev, "content_index", "audio_end_ms")
	if e != nil {
		return e
	}
	it := rt.byID[id]
	if it == nil || rt.indexOf(id) < 0 {
		return noItem(id, "item_id")
	}
	if it.role != "assistant" {
		return &apiError{"invalid_request_error", "invalid_value", "Only assistant messages can be truncated.", "item_id"}
	}
	if m["audio_end_ms"] == nil {
		return missing("audio_end_ms")
	}
	end, e := integer(m["audio_end_ms"], "audio_end_ms", 0, int(it.audioMs))
	if e != nil {
		return e
	}
	it.audioMs, it.transcript = int64(end), ""
	rt.ss.send(map[string]any{"type": "conversation.item.truncated", "item_id": id, "content_index": 0, "audio_end_ms": end})
	return nil
}

// parseItem reads an inline conversation item (conversation.item.create or
// response.input): a message with text or audio content, or a function
// call or its output.
func parseItem(raw json.RawMessage, path string) (*item, *apiError) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, invalidType(path, "an object", raw)
	}
	if head.Type == nil {
		return nil, missing(join(path, "type"))
	}
	it := &item{typ: *head.Type, status: "completed"}
	switch *head.Type {
	case "message":
		m, e := object(raw, path, "id", "type", "object", "status", "role", "content")
		if e != nil {
			return nil, e
		}
		if it.role, e = requiredStr(m, path, "role"); e != nil {
			return nil, e
		}
		if !slices.Contains([]string{"user", "assistant", "system"}, it.role) {
			return nil, invalidValue(join(path, "role"), it.role, []string{"user", "assistant", "system"})
		}
		if raw, ok := m["id"]; ok {
			if it.id, e = str(raw, join(path, "id")); e != nil {
				return nil, e
			}
		}
		var parts []json.RawMessage
		if err := json.Unmarshal(m["content"], &parts); err != nil || m["content"] == nil {
			return nil, invalidType(join(path, "content"), "an array", m["content"])
		}
		for i, p := range parts {
			pp := fmt.Sprintf("%s.content[%d]", path, i)
			c, e := object(p, pp, "type", "text", "audio", "transcript")
			if e != nil {
				return nil, e
			}
			typ, e := str(c["type"], join(pp, "type"))
			if e != nil {
				return nil, e
			}
			kinds := map[string][]string{"user": {"input_text", "input_audio"}, "system": {"input_text"},
				"assistant": {"output_text", "output_audio"}}[it.role]
			if !slices.Contains(kinds, typ) {
				return nil, invalidValue(join(pp, "type"), typ, kinds)
			}
			switch typ {
			case "input_text", "output_text":
				t, e := str(c["text"], join(pp, "text"))
				if e != nil {
					return nil, e
				}
				it.text += t
			case "input_audio", "output_audio":
				if raw, ok := c["audio"]; ok {
					pcm, e := decodeAudio(raw, join(pp, "audio"))
					if e != nil {
						return nil, e
					}
					it.audioMs += int64(len(pcm) / 2 / samplesMs)
				}
				it.hasAudio = true
				if raw, ok := c["transcript"]; ok && !isNull(raw) {
					if it.transcript, e = str(raw, join(pp, "transcript")); e != nil {
						return nil, e
					}
				}
			}
		}
	case "function_call", "function_call_output":
		if _, e := object(raw, path, "id", "type", "object", "status", "call_id", "name", "arguments", "output"); e != nil {
			return nil, e
		}
	default:
		return nil, invalidValue(join(path, "type"), *head.Type, []string{"message", "function_call", "function_call_output"})
	}
	if it.id == "" {
		it.id = newID("item_")
	}
	return it, nil
}

func (rt *realtime) createItem(ev clientEvent) *apiError {
	m, e := ev.object("type", "event_id", "previous_item_id", "item")
	if e != nil {
		return e
	}
	if m["item"] == nil {
		return missing("item")
	}
	it, e := parseItem(m["item"], "item")
	if e != nil {
		return e
	}
	if _, dup := rt.byID[it.id]; dup {
		return &apiError{"invalid_request_error", "item_id_already_exists",
			fmt.Sprintf("Item with id '%s' already exists.", it.id), "item.id"}
	}
	at := len(rt.items)
	if raw, ok := m["previous_item_id"]; ok && !isNull(raw) {
		prev, e := str(raw, "previous_item_id")
		if e != nil {
			return e
		}
		if prev == "root" {
			at = 0
		} else if i := rt.indexOf(prev); i >= 0 {
			at = i + 1
		} else {
			return noItem(prev, "previous_item_id")
		}
	}
	// User audio added this way (a turn replayed on a new connection) is
	// not a turn of this session: responses over it say "[xx] (audio)."
	// and it is not in SessionInfo.Turns.
	rt.insert(it, at)
	return nil
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
			if raw, ok := o["format"]; ok {
				if e := parseFormat(raw, "response.audio.output.format"); e != nil {
					return p, e
				}
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

// stop cancels the response in progress without events: the session is
// ending and nothing more is sent.
func (rt *realtime) stop() {
	if rt.active != nil {
		rt.active.status, rt.active.reason = "incomplete", "session_ended"
		close(rt.active.cancel)
		rt.active = nil
	}
}
