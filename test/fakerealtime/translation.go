package fakerealtime

import (
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"time"
)

// The translation engine works in 200 ms frames of model time.
const (
	frameMs      = 200
	frameSamples = SampleRate * frameMs / 1000
	frameBytes   = 2 * frameSamples
)

// translation is a session on /v1/realtime/translations: continuous
// translation, no turns, no prompt.
type translation struct {
	ss            *session
	language      string
	transcription map[string]any // nil: no source transcript
	noise         map[string]any // nil: off

	buf     []byte // audio short of a whole frame
	frames  int64  // whole frames processed: model time is frames·200 ms
	pending []pendingOut
	outMs   int64

	// Sentence tracking: a sentence is speech up to 400 ms of silence.
	sentence   int
	inSentence bool
	spoken     bool // its translation has started
	silentRun  int
}

// pendingOut is output waiting for model time to reach due.
type pendingOut struct {
	dueMs   int64
	ev      map[string]any
	audioMs int64
}

func newTranslation(ss *session) *translation { return &translation{ss: ss, language: "en"} }

func (t *translation) lang() string { return t.language }

func (t *translation) stop() {}

func (t *translation) fill(si *SessionInfo) {
	si.InputMs = t.frames*frameMs + int64(len(t.buf)/2*1000/SampleRate)
	si.OutputMs = t.outMs
}

func (t *translation) sessionObject() map[string]any {
	return map[string]any{
		"id":         t.ss.id,
		"type":       "translation",
		"model":      t.ss.model,
		"expires_at": t.ss.expiresAtUnix(),
		"audio": map[string]any{
			"input":  map[string]any{"transcription": t.transcription, "noise_reduction": t.noise},
			"output": map[string]any{"language": t.language},
		},
	}
}

var translationEvents = []string{"session.update", "session.input_audio_buffer.append", "session.close"}

func (t *translation) handle(ev clientEvent) {
	switch ev.typ {
	case "session.update":
		if e := t.update(ev); e != nil {
			t.ss.fail(e, ev)
			return
		}
		t.ss.send(map[string]any{"type": "session.updated", "session": t.sessionObject()})
	case "session.input_audio_buffer.append":
		m, e := ev.object("type", "event_id", "audio")
		if e != nil {
			t.ss.fail(e, ev)
			return
		}
		pcm, e := decodeAudio(m["audio"], "audio")
		if e != nil {
			t.ss.fail(e, ev)
			return
		}
		t.append(pcm)
	case "session.close":
		if _, e := ev.object("type", "event_id"); e != nil {
			t.ss.fail(e, ev)
			return
		}
		t.flush()
		t.ss.send(map[string]any{"type": "session.closed"})
		t.ss.endWith(1000, "session.close")
	default:
		t.ss.fail(invalidValue("type", ev.typ, translationEvents), ev)
	}
}

// update applies a session.update all or nothing. Only the three documented
// fields may be set; type and model are fixed at creation.
func (t *translation) update(ev clientEvent) *apiError {
	top, e := ev.object("type", "event_id", "session")
	if e != nil {
		return e
	}
	sess, e := requiredObject(top, "", "session", "audio")
	if e != nil {
		return e
	}
	lang, transcription, noise := t.language, t.transcription, t.noise
	if raw, ok := sess["audio"]; ok {
		audio, e := object(raw, "session.audio", "input", "output")
		if e != nil {
			return e
		}
		if raw, ok := audio["input"]; ok {
			in, e := object(raw, "session.audio.input", "transcription", "noise_reduction")
			if e != nil {
				return e
			}
			if raw, ok := in["transcription"]; ok {
				if transcription, e = parseTranscription(raw, "session.audio.input.transcription", false); e != nil {
					return e
				}
			}
			if raw, ok := in["noise_reduction"]; ok {
				if noise, e = parseNoiseReduction(raw, "session.audio.input.noise_reduction", true, t.noise); e != nil {
					return e
				}
			}
		}
		if raw, ok := audio["output"]; ok {
			out, e := object(raw, "session.audio.output", "language")
			if e != nil {
				return e
			}
			if raw, ok := out["language"]; ok {
				if lang, e = str(raw, "session.audio.output.language"); e != nil {
					return e
				}
				if !slices.Contains(TranslateLanguages, baseLang(lang)) {
					return invalidValue("session.audio.output.language", lang, TranslateLanguages)
				}
			}
		}
	}
	t.language, t.transcription, t.noise = lang, transcription, noise
	return nil
}

// parseTranscription reads audio.input.transcription: null or {model}
// (plus language and prompt on the realtime endpoint).
func parseTranscription(raw []byte, path string, realtime bool) (map[string]any, *apiError) {
	if isNull(raw) {
		return nil, nil
	}
	allowed := []string{"model"}
	if realtime {
		allowed = append(allowed, "language", "prompt")
	}
	m, e := object(raw, path, allowed...)
	if e != nil {
		return nil, e
	}
	out := map[string]any{}
	for _, k := range allowed {
		if raw, ok := m[k]; ok {
			s, e := str(raw, join(path, k))
			if e != nil {
				return nil, e
			}
			out[k] = s
		}
	}
	if out["model"] == nil || out["model"] == "" {
		return nil, missing(join(path, "model"))
	}
	return out, nil
}

// parseNoiseReduction reads audio.input.noise_reduction: null or
// {type: near_field|far_field} (plus strength 0..1 on translation sessions,
// kept from the previous setting when omitted).
func parseNoiseReduction(raw []byte, path string, strength bool, prev map[string]any) (map[string]any, *apiError) {
	if isNull(raw) {
		return nil, nil
	}
	allowed := []string{"type"}
	if strength {
		allowed = append(allowed, "strength")
	}
	m, e := object(raw, path, allowed...)
	if e != nil {
		return nil, e
	}
	typ, e := requiredStr(m, path, "type")
	if e != nil {
		return nil, e
	}
	if typ != "near_field" && typ != "far_field" {
		return nil, invalidValue(join(path, "type"), typ, []string{"near_field", "far_field"})
	}
	out := map[string]any{"type": typ}
	if strength {
		out["strength"] = 1.0
		if prev != nil && prev["strength"] != nil {
			out["strength"] = prev["strength"]
		}
		if raw, ok := m["strength"]; ok {
			f, e := number(raw, join(path, "strength"), 0, 1)
			if e != nil {
				return nil, e
			}
			out["strength"] = f
		}
	}
	return out, nil
}

// append feeds audio to the engine, which consumes whole 200 ms frames.
func (t *translation) append(pcm []byte) {
	t.buf = append(t.buf, pcm...)
	n := 0
	for ; n+frameBytes <= len(t.buf); n += frameBytes {
		t.frame(t.buf[n : n+frameBytes])
	}
	t.buf = append(t.buf[:0], t.buf[n:]...)
	t.release(t.frames * frameMs)
}

// frame translates one 200 ms frame of model time. Its output becomes due
// TranslateDelay of model time later.
func (t *translation) frame(f []byte) {
	start := t.frames * frameMs
	end := start + frameMs
	sample := t.frames * frameSamples
	t.frames++
	opts := t.ss.srv.opts
	due := end + opts.TranslateDelay.Milliseconds()
	if RMS(f) < opts.SpeechRMS {
		if t.inSentence {
			t.silentRun++
			if t.silentRun >= 2 {
				t.endSentence(start, due)
			}
		}
		return
	}
	t.silentRun = 0
	sep := ""
	if t.sentence > 0 {
		sep = " "
	}
	if !t.inSentence {
		t.inSentence, t.spoken = true, false
		t.sentence++
		if t.transcription != nil {
			t.ss.send(map[string]any{"type": "session.input_transcript.delta",
				"delta": fmt.Sprintf("%ssource sentence %d", sep, t.sentence), "elapsed_ms": start})
		}
	}
	if opts.SilentOnTargetLanguage && Goertzel(f, ToneHz(t.language)) > 0.5 {
		return // already in the target language: the model stays silent
	}
	if !t.spoken {
		t.spoken = true
		t.queue(due, 0, map[string]any{"type": "session.output_transcript.delta",
			"delta": fmt.Sprintf("%s[%s] sentence %d", sep, baseLang(t.language), t.sentence), "elapsed_ms": start})
	}
	pcm := toneAt(ToneHz(t.language), frameSamples, 0.3, int(sample))
	t.queue(due, frameMs, map[string]any{"type": "session.output_audio.delta",
		"delta": base64.StdEncoding.EncodeToString(pcm), "elapsed_ms": start})
}

// endSentence closes the current sentence: its source transcript now, its
// translation's full stop when due.
func (t *translation) endSentence(atMs, due int64) {
	t.inSentence = false
	if t.transcription != nil {
		t.ss.send(map[string]any{"type": "session.input_transcript.delta", "delta": ".", "elapsed_ms": atMs})
	}
	if t.spoken {
		t.queue(due, 0, map[string]any{"type": "session.output_transcript.delta", "delta": ".", "elapsed_ms": atMs})
	}
}

func (t *translation) queue(due, audioMs int64, ev map[string]any) {
	t.pending = append(t.pending, pendingOut{dueMs: due, ev: ev, audioMs: audioMs})
}

// release sends the output whose model time has come.
func (t *translation) release(nowMs int64) {
	t.ss.srv.mu.Lock()
	hold := t.ss.srv.responseDelay
	t.ss.srv.mu.Unlock()
	var notBefore time.Time
	if hold > 0 {
		notBefore = time.Now().Add(hold)
	}
	n := 0
	for ; n < len(t.pending) && t.pending[n].dueMs <= nowMs; n++ {
		t.ss.sendAt(t.pending[n].ev, notBefore)
		t.outMs += t.pending[n].audioMs
	}
	t.pending = append(t.pending[:0], t.pending[n:]...)
}

// flush is session.close: the engine finishes the partial frame, ends the
// sentence in progress and emits everything still pending.
func (t *translation) flush() {
	if len(t.buf) > 0 {
		f := make([]byte, frameBytes)
		copy(f, t.buf)
		t.buf = t.buf[:0]
		t.frame(f)
	}
	if t.inSentence {
		t.endSentence(t.frames*frameMs, 0)
	}
	t.release(math.MaxInt64)
}
