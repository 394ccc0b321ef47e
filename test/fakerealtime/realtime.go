package fakerealtime

// This file is the core of a GA /v1/realtime session: its state, the
// dispatch of client events, and the input audio buffer with its server
// VAD. The session configuration (session.update) is in realtime_config.go,
// conversation items in realtime_items.go, responses in realtime_response.go.

import (
	"encoding/json"
	"fmt"
	"slices"
)

// The server VAD analyses 20 ms blocks; response audio goes out in 100 ms
// deltas.
const (
	vadSamples = SampleRate / 50
	vadBytes   = 2 * vadSamples
	samplesMs  = SampleRate / 1000
	chunkMs    = 100 // response audio delta length
)

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

// realtimeEvents are the client events a realtime session takes, each with
// its handler, in the order the error for any other type lists them.
var realtimeEvents = []struct {
	typ    string
	handle func(*realtime, clientEvent) *apiError
}{
	{"session.update", (*realtime).update},
	{"input_audio_buffer.append", (*realtime).appendAudio},
	{"input_audio_buffer.commit", (*realtime).commitManual},
	{"input_audio_buffer.clear", (*realtime).clearInput},
	{"conversation.item.create", (*realtime).createItem},
	{"conversation.item.retrieve", (*realtime).retrieveItem},
	{"conversation.item.truncate", (*realtime).truncateItem},
	{"conversation.item.delete", (*realtime).deleteItem},
	{"response.create", (*realtime).responseCreate},
	{"response.cancel", (*realtime).responseCancel},
}

func (rt *realtime) handle(ev clientEvent) {
	types := make([]string, 0, len(realtimeEvents))
	for _, h := range realtimeEvents {
		if h.typ == ev.typ {
			if e := h.handle(rt, ev); e != nil {
				rt.ss.fail(e, ev)
			}
			return
		}
		types = append(types, h.typ)
	}
	rt.ss.fail(invalidValue("type", ev.typ, types), ev)
}

// clearInput drops the input buffer: input_audio_buffer.clear.
func (rt *realtime) clearInput(ev clientEvent) *apiError {
	if _, e := ev.object("type", "event_id"); e != nil {
		return e
	}
	rt.clearBuffer()
	rt.ss.send(map[string]any{"type": "input_audio_buffer.cleared"})
	return nil
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

// stop cancels the response in progress without events: the session is
// ending and nothing more is sent.
func (rt *realtime) stop() {
	if rt.active != nil {
		rt.active.status, rt.active.reason = "incomplete", "session_ended"
		close(rt.active.cancel)
		rt.active = nil
	}
}
