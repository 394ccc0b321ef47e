package client

import (
	"fmt"
	"io"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
)

// recorder writes what a listener receives, keeping the channel's timing:
// a recording is as long as the time it covered, silence where nobody
// spoke (PCM listeners get no audio then) and where the connection was
// down, so it lines up with the talk.
type recorder struct {
	wav     *audio.WAVWriter // a .wav recording
	ogg     *opus.Writer     // a .ogg recording (Opus on the wire)
	dec     *opus.Decoder    // Opus on the wire, for WAV and onAudio
	enc     *opus.Encoder    // for the silent packets of an Ogg recording's gaps
	codec   bool             // Opus on the wire
	onAudio func(pcm []byte) // sees what the server sent, never the filling
	filling bool             // fill is recording silence: not for onAudio

	start   time.Time     // when the first connection said hello
	written time.Duration // audio recorded since
}

// Slack a recording may fall behind the wall clock before silence fills
// the gap: PCM listeners get audio only while there is some, and messages
// arrive with jitter; an Opus stream is continuous, so only a lost
// connection leaves a gap.
const (
	pcmSlack  = 300 * time.Millisecond
	opusSlack = 500 * time.Millisecond
)

// hello marks the start of the recording, at the first connection.
func (r *recorder) hello(now time.Time) {
	if r.start.IsZero() {
		r.start = now
	}
}

// message records one binary message that arrived at now.
func (r *recorder) message(b []byte, now time.Time) error {
	if r.codec {
		pks, err := opus.SplitFramed(b)
		if err != nil {
			return fmt.Errorf("server sent bad Opus: %w", err)
		}
		if err := r.fill(now, opusSlack); err != nil {
			return err
		}
		return r.packets(pks)
	}
	if len(b)%2 != 0 {
		return fmt.Errorf("server sent %d bytes of PCM16", len(b))
	}
	if err := r.fill(now, pcmSlack); err != nil {
		return err
	}
	return r.pcm(b)
}

// packets records Opus packets: as they are to Ogg, decoded to WAV.
func (r *recorder) packets(pks [][]byte) error {
	if r.ogg != nil {
		if err := r.ogg.WritePackets(pks...); err != nil {
			return err
		}
	}
	if r.wav == nil && (r.onAudio == nil || r.filling) {
		r.written += time.Duration(len(pks)) * 20 * time.Millisecond
		return nil
	}
	var pcm []int16
	for _, p := range pks {
		var err error
		if pcm, err = r.dec.Decode(pcm, p); err != nil {
			return fmt.Errorf("server sent bad Opus: %w", err)
		}
	}
	return r.pcm(audio.Bytes(pcm))
}

// pcm records PCM16LE: to the WAV, and to onAudio.
func (r *recorder) pcm(b []byte) error {
	if r.wav != nil {
		if _, err := r.wav.Write(b); err != nil {
			return err
		}
	}
	r.written += audio.BytesDuration(len(b))
	if r.onAudio != nil && !r.filling {
		r.onAudio(b)
	}
	return nil
}

// fill records silence up to now when the recording is more than slack
// behind the time it has covered.
func (r *recorder) fill(now time.Time, slack time.Duration) error {
	if r.start.IsZero() {
		return nil
	}
	gap := now.Sub(r.start) - r.written
	if gap <= slack {
		return nil
	}
	r.filling = true
	defer func() { r.filling = false }()
	if r.ogg == nil { // PCM out (or none), a second at a time
		for gap > 0 {
			d := min(gap, time.Second)
			if err := r.pcm(make([]byte, audio.DurationBytes(d)&^1)); err != nil {
				return err
			}
			gap -= d
		}
		return nil
	}
	if r.enc == nil {
		var err error
		if r.enc, err = opus.NewEncoder(0); err != nil {
			return err
		}
	}
	silent, err := r.enc.Encode(nil, make([]int16, opus.FrameSamples))
	if err != nil {
		return err
	}
	pks := make([][]byte, gap/(20*time.Millisecond))
	for i := range pks {
		pks[i] = silent
	}
	return r.packets(pks)
}

// finish records the silence up to now and closes the file's stream.
func (r *recorder) finish(now time.Time) error {
	slack := pcmSlack
	if r.codec {
		slack = opusSlack
	}
	err := r.fill(now, slack)
	if r.wav != nil {
		if cerr := r.wav.Close(); err == nil {
			err = cerr
		}
	}
	if r.ogg != nil {
		if cerr := r.ogg.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// newRecorder records to out as format ("wav" or "ogg"; out may be nil:
// onAudio only), from codec on the wire.
func newRecorder(out io.Writer, format string, codec bool, title string, onAudio func([]byte)) (*recorder, error) {
	r := &recorder{codec: codec, onAudio: onAudio}
	var err error
	if codec {
		if r.dec, err = opus.NewDecoder(); err != nil {
			return nil, err
		}
	}
	switch {
	case out == nil:
	case format == "ogg":
		r.ogg, err = opus.NewWriter(out, 1, title)
	default:
		r.wav, err = audio.NewWAVWriter(out, audio.Rate, 1)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}
