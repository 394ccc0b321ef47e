package fakerealtime

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
)

// Voices the GA endpoint accepts for audio.output.voice.
var Voices = []string{"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}

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

// checkFormat checks the format of the audio object at path, where it
// names one: {"type":"audio/pcm","rate":24000}, the only format the fake
// streams.
func checkFormat(audio map[string]json.RawMessage, path string) *apiError {
	raw, ok := audio["format"]
	if !ok {
		return nil
	}
	path = join(path, "format")
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
		if e := checkFormat(in, "session.audio.input"); e != nil {
			return e
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
		if e := checkFormat(out, "session.audio.output"); e != nil {
			return e
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
	typ, e := objectType(raw, path)
	if e != nil {
		return nil, e
	}
	var m map[string]json.RawMessage
	switch typ {
	case "server_vad":
		m, e = object(raw, path, "type", "threshold", "prefix_padding_ms", "silence_duration_ms",
			"create_response", "interrupt_response", "idle_timeout_ms")
	case "semantic_vad":
		m, e = object(raw, path, "type", "eagerness", "create_response", "interrupt_response")
	default:
		return nil, invalidValue(join(path, "type"), typ, []string{"server_vad", "semantic_vad"})
	}
	if e != nil {
		return nil, e
	}
	td := defaultTurnDetection(typ)
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
