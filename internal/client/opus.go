package client

import (
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
)

// opusPacker turns a speaker's samples, at the source's rate, into the
// speaker WebSocket's Opus messages: 24 kHz, 20 ms packets, each preceded
// by its length.
type opusPacker struct {
	rs      *audio.Resampler
	enc     *opus.Encoder
	pending []int16 // 24 kHz samples short of a packet
}

func newOpusPacker(rate int) (*opusPacker, error) {
	enc, err := opus.NewEncoder(0)
	if err != nil {
		return nil, err
	}
	return &opusPacker{rs: audio.NewResampler(rate, audio.Rate), enc: enc}, nil
}

// pack appends to dst the packets in's samples complete (none, when they
// do not make a packet yet).
func (p *opusPacker) pack(dst []byte, in []int16) ([]byte, error) {
	p.pending = append(p.pending, p.rs.Process(in)...)
	return p.encode(dst)
}

// flush appends what is left, the last packet padded with silence.
func (p *opusPacker) flush(dst []byte) ([]byte, error) {
	p.pending = append(p.pending, p.rs.Flush()...)
	if r := len(p.pending) % opus.FrameSamples; r != 0 {
		p.pending = append(p.pending, make([]int16, opus.FrameSamples-r)...)
	}
	return p.encode(dst)
}

func (p *opusPacker) encode(dst []byte) ([]byte, error) {
	off := 0
	var packet []byte
	for ; off+opus.FrameSamples <= len(p.pending); off += opus.FrameSamples {
		var err error
		if packet, err = p.enc.Encode(packet[:0], p.pending[off:off+opus.FrameSamples]); err != nil {
			return dst, err
		}
		dst = opus.AppendFramed(dst, packet)
	}
	p.pending = p.pending[:copy(p.pending, p.pending[off:])]
	return dst, nil
}
