// Package opus is babelcast's Opus codec: 20 ms mono packets encoded from
// and decoded to the 24 kHz PCM the rest of babelcast speaks (libopus, via
// gopkg.in/hraban/opus.v2), the length-prefixed framing the WebSockets
// carry, and Ogg/Opus streams for players and recordings.
//
// Opus runs on a 48 kHz clock whatever the PCM rate on either side: a 20 ms
// packet is 480 samples at 24 kHz, 960 at 48 kHz, and Ogg granule positions
// count 48 kHz samples.
package opus

import (
	"encoding/binary"
	"errors"
	"fmt"

	"gopkg.in/hraban/opus.v2"

	"github.com/babelcast/babelcast/internal/audio"
)

const (
	// FrameSamples is the samples of one 20 ms packet at audio.Rate.
	FrameSamples = audio.Rate / 50
	// FrameBytes is the PCM16LE bytes of one packet's audio.
	FrameBytes = 2 * FrameSamples
	// ClockRate is Opus's own clock, which the wire protocols announce.
	ClockRate = 48000
	// DefaultBitrate suits speech: clear voices in ~32 kbit/s.
	DefaultBitrate = 32000
	// MaxPacket bounds a packet we take: libopus's recommended buffer for
	// the largest packet (several frames, up to 120 ms).
	MaxPacket = 4000
	// maxFrameBytes is the largest single Opus frame (RFC 6716); our 20 ms
	// packets are one frame.
	maxFrameBytes = 1275
	// maxDecodeSamples covers the longest packet Opus allows (120 ms).
	maxDecodeSamples = audio.Rate * 120 / 1000
)

// Encoder turns 24 kHz mono PCM into 20 ms Opus packets.
type Encoder struct {
	enc *opus.Encoder
	buf []byte
}

// NewEncoder makes an encoder for speech at bitrate bits a second (0:
// DefaultBitrate).
func NewEncoder(bitrate int) (*Encoder, error) {
	if bitrate <= 0 {
		bitrate = DefaultBitrate
	}
	enc, err := opus.NewEncoder(audio.Rate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("opus encoder: %w", err)
	}
	if err := enc.SetBitrate(bitrate); err != nil {
		return nil, fmt.Errorf("opus bitrate %d: %w", bitrate, err)
	}
	return &Encoder{enc: enc, buf: make([]byte, maxFrameBytes)}, nil
}

// Encode encodes exactly FrameSamples samples into one packet, appended to
// dst.
func (e *Encoder) Encode(dst []byte, pcm []int16) ([]byte, error) {
	if len(pcm) != FrameSamples {
		return dst, fmt.Errorf("opus: encode %d samples, want %d (20 ms)", len(pcm), FrameSamples)
	}
	n, err := e.enc.Encode(pcm, e.buf)
	if err != nil {
		return dst, fmt.Errorf("opus encode: %w", err)
	}
	return append(dst, e.buf[:n]...), nil
}

// Decoder turns Opus packets back into 24 kHz mono PCM.
type Decoder struct {
	dec *opus.Decoder
	buf []int16
}

// NewDecoder makes a decoder.
func NewDecoder() (*Decoder, error) {
	dec, err := opus.NewDecoder(audio.Rate, 1)
	if err != nil {
		return nil, fmt.Errorf("opus decoder: %w", err)
	}
	return &Decoder{dec: dec, buf: make([]int16, maxDecodeSamples)}, nil
}

// ErrCorrupt is a packet libopus could not decode.
var ErrCorrupt = errors.New("corrupt Opus packet")

// Decode decodes one packet, appending its samples to dst.
func (d *Decoder) Decode(dst []int16, packet []byte) ([]int16, error) {
	if len(packet) == 0 || len(packet) > MaxPacket {
		return dst, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(packet))
	}
	n, err := d.dec.Decode(packet, d.buf)
	if err != nil {
		return dst, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return append(dst, d.buf[:n]...), nil
}

// AppendFramed appends packet to dst with its length as a 2-byte
// big-endian prefix: the framing of Opus on babelcast's WebSockets.
func AppendFramed(dst, packet []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(packet)))
	return append(dst, packet...)
}

// ErrFraming is a binary message whose length prefixes do not add up.
var ErrFraming = errors.New("bad Opus framing")

// SplitFramed returns the packets of a length-prefixed message (sharing
// its memory). Every packet must be non-empty and the prefixes must cover
// the message exactly.
func SplitFramed(msg []byte) ([][]byte, error) {
	var out [][]byte
	for len(msg) > 0 {
		if len(msg) < 2 {
			return nil, fmt.Errorf("%w: %d stray byte at the end", ErrFraming, len(msg))
		}
		n := int(binary.BigEndian.Uint16(msg))
		msg = msg[2:]
		if n == 0 || n > len(msg) {
			return nil, fmt.Errorf("%w: a packet of %d bytes with %d left in the message", ErrFraming, n, len(msg))
		}
		out = append(out, msg[:n:n])
		msg = msg[n:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrFraming)
	}
	return out, nil
}
