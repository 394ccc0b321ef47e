package ingest

import (
	"fmt"
	"log/slog"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/internal/wire"
)

// opusInput decodes a speaker's Opus (start message "codec":"opus"): binary
// messages of length-prefixed packets on a 48 kHz clock, decoded straight
// to the 24 kHz the rest of babelcast speaks. Reader goroutine only.
type opusInput struct {
	dec *opus.Decoder
	buf []int16
}

func newOpusInput() (*opusInput, error) {
	dec, err := opus.NewDecoder()
	if err != nil {
		return nil, err
	}
	return &opusInput{dec: dec}, nil
}

// decode returns the samples of one binary message (valid until the next
// call), or why it is not Opus as the protocol frames it.
func (o *opusInput) decode(msg []byte) ([]int16, error) {
	pks, err := opus.SplitFramed(msg)
	if err != nil {
		return nil, fmt.Errorf("binary message of %d bytes: %v; Opus goes as packets each preceded by its length (2 bytes, big-endian)", len(msg), err)
	}
	o.buf = o.buf[:0]
	for i, p := range pks {
		if o.buf, err = o.dec.Decode(o.buf, p); err != nil {
			return nil, fmt.Errorf("packet %d of %d in a binary message: %v", i+1, len(pks), err)
		}
	}
	return o.buf, nil
}

// inputFormat is what a start message says of the audio to come.
type inputFormat struct {
	rate int        // the clock the sender counts in: Opus's 48 kHz, or PCM's rate
	opus *opusInput // with "codec":"opus": what decodes the binary messages
}

// resampler turns the decoded audio into the 24 kHz babelcast speaks:
// Opus is decoded at that rate already.
func (f inputFormat) resampler() *audio.Resampler {
	if f.opus != nil {
		return audio.NewResampler(audio.Rate, audio.Rate)
	}
	return audio.NewResampler(f.rate, audio.Rate)
}

// startInput reads a start message's sample_rate and codec (speakers and
// interpreters send the same), or closes the connection as h's bad input
// (ok false): a start after the audio began (started), a codec other than
// PCM and Opus, or a rate out of range.
func startInput(h messageHandler, started bool, sampleRate *int, codec string, log *slog.Logger) (f inputFormat, ok bool) {
	bad := func(code, message string) (inputFormat, bool) {
		h.badInput(wire.CloseBadMessage, code, message)
		return inputFormat{}, false
	}
	if started {
		return bad(wire.CodeBadMessage, "the start message must come first, before any audio")
	}
	f = inputFormat{rate: audio.Rate}
	if sampleRate != nil {
		f.rate = *sampleRate
	}
	switch codec {
	case "", wire.CodecPCM:
	case wire.CodecOpus:
		in, err := newOpusInput()
		if err != nil {
			log.Error("no Opus decoder", "err", err)
			return bad(wire.CodeBadMessage, "this server cannot decode Opus; send PCM")
		}
		f.opus, f.rate = in, wire.OpusClockRate
	default:
		return bad(wire.CodeBadMessage, fmt.Sprintf("codec must be %q or %q, not %.20q", wire.CodecPCM, wire.CodecOpus, codec))
	}
	if err := audio.CheckRate(f.rate); err != nil {
		return bad(wire.CodeBadSampleRate, err.Error())
	}
	return f, true
}
