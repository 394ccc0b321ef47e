package ingest

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/wire"
)

// badInputs is a messageHandler that keeps what it was refused.
type badInputs struct{ refused []string }

func (*badInputs) handleText([]byte)             {}
func (*badInputs) handleAudio([]byte, time.Time) {}
func (b *badInputs) badInput(code int, errCode, message string) {
	b.refused = append(b.refused, errCode+": "+message)
}

// TestReadHelpers: what speakers and interpreters share in reading their
// messages refuses the same bad input, with the same codes, and takes
// the rest.
func TestReadHelpers(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	refused := func(t *testing.T, f func(h messageHandler), want string) {
		t.Helper()
		var h badInputs
		f(&h)
		got := strings.Join(h.refused, "\n")
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("refused %q, want %q", got, want)
		}
	}

	var m wire.Start
	refused(t, func(h messageHandler) { decodeText(h, []byte(`{"type":`), &m) }, wire.CodeBadMessage+": bad text message: unexpected end of the message")
	// A wrong type is told in JSON's words, not Go's.
	refused(t, func(h messageHandler) { decodeText(h, []byte(`{"type":"start","sample_rate":"48000"}`), &m) },
		wire.CodeBadMessage+": bad text message: field sample_rate must be a whole number, not string")
	refused(t, func(h messageHandler) {
		if !decodeText(h, []byte(`{"type":"start","mic":"m2"}`), &m) || *m.Mic != "m2" {
			t.Errorf("decoded %+v", m)
		}
	}, "")
	refused(t, func(h messageHandler) { unknownType(h, "", "x") }, `text message has no "type"`)
	refused(t, func(h messageHandler) { unknownType(h, "dance", "a speaker sends start") }, `unknown message type "dance"; a speaker sends start`)

	rate := 16000
	refused(t, func(h messageHandler) {
		if f, ok := startInput(h, false, &rate, "", log); !ok || f.rate != 16000 || f.opus != nil {
			t.Errorf("PCM at 16 kHz: %+v %v", f, ok)
		}
	}, "")
	refused(t, func(h messageHandler) {
		if f, ok := startInput(h, false, nil, wire.CodecPCM, log); !ok || f.rate != wire.SampleRate {
			t.Errorf("no rate: %+v %v", f, ok)
		}
	}, "")
	refused(t, func(h messageHandler) { startInput(h, true, nil, "", log) }, "the start message must come first")
	refused(t, func(h messageHandler) { startInput(h, false, nil, "flac", log) }, wire.CodeBadMessage+`: codec must be "pcm" or "opus"`)
	tooFast := 10_000_000
	refused(t, func(h messageHandler) { startInput(h, false, &tooFast, "", log) }, wire.CodeBadSampleRate+": sample rate")

	refused(t, func(h messageHandler) {
		if s, ok := decodeAudio(h, nil, []byte{1, 0, 0xff, 0xff}); !ok || len(s) != 2 || s[0] != 1 || s[1] != -1 {
			t.Errorf("PCM: %v %v", s, ok)
		}
	}, "")
	refused(t, func(h messageHandler) {
		if _, ok := decodeAudio(h, nil, nil); ok {
			t.Error("empty PCM taken")
		}
	}, "")
	refused(t, func(h messageHandler) { decodeAudio(h, nil, []byte{1, 2, 3}) }, wire.CodeBadAudio+": binary message of 3 bytes")
}
