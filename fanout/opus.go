package fanout

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/internal/metrics"
)

// Opus for listeners: ?codec=opus on the WebSocket, and the .ogg stream.
//
// A channel encodes each variant of its program (with and without the
// original) once per tick for every Opus listener of the node, whatever
// their number: the encoders live in the channel, on its program's
// goroutine, and what they make is shared as prepared frames, as PCM is.
// An Opus stream is continuous: a tick with nothing to play is encoded as
// silence (a few bytes a packet), so the packets count the channel's clock
// and a player or a recording keeps the channel's timing.

var opusErrors = metrics.Errors.WithLabelValues("fanout", "opus_encode")

// Listener codecs.
const (
	codecPCM  = iota
	codecOpus // length-prefixed packets on the WebSocket
	codecOgg  // Ogg pages on an HTTP stream
)

// opusStage is a channel's Opus encoders, one per variant, made when the
// variant's first Opus listener is served. Used only from the program's
// goroutine (deliver).
type opusStage struct {
	enc    [2]*opus.Encoder // [passthrough]
	serial uint32           // the Ogg stream's serial, shared by its listeners
	seq    [2]uint32        // next Ogg page of each variant
	gran   [2]int64         // granule position at the end of the last page
	broken [2]bool          // no encoder could be made: the variant has no Opus
	// encoded counts the packets encoded, for tests and benchmarks (read
	// from other goroutines).
	encoded atomic.Uint64
}

// opusTick is one tick's Opus frames, built on first use by deliver.
type opusTick struct {
	done    [2]bool
	packets [2][][]byte
	ws, ogg [2]*frame
	seq     [2]uint32 // the sequence number of the tick's Ogg page
}

// deliverOpus queues this tick's Opus to l: encoded once per variant per
// tick, framed once per transport. An Ogg listener's first page comes
// after header pages numbered just before it, so its stream has no gap.
func (c *channel) deliverOpus(t *opusTick, pf programFrame, l *listener, now time.Time) {
	v := b2i(l.passthrough)
	pks := c.opusPackets(t, pf, v)
	if len(pks) == 0 {
		return
	}
	pcmBytes := audio.DurationBytes(c.prog.tick)
	captured := pf.captured
	if v == 0 {
		captured = pf.aloneAt
	}
	if l.codec == codecOpus {
		if t.ws[v] == nil {
			var data []byte
			for _, p := range pks {
				data = opus.AppendFramed(data, p)
			}
			t.ws[v] = &frame{hdr: wsHeader(opBinary, len(data)), data: data, audio: true, captured: captured, pcmBytes: pcmBytes}
		}
		l.pushAudio(t.ws[v], now)
		return
	}
	st := &c.opus
	if t.ogg[v] == nil {
		st.gran[v] += int64(len(pks)) * opus.PacketGranules
		t.seq[v] = st.seq[v]
		data, err := opus.AppendPage(nil, opus.Page{Serial: st.serial, Seq: st.seq[v], Granule: st.gran[v]}, pks...)
		if err != nil { // a tick is a few packets: cannot happen
			opusErrors.Inc()
			return
		}
		st.seq[v]++
		t.ogg[v] = &frame{data: data, audio: true, captured: captured, pcmBytes: pcmBytes}
	}
	if !l.oggStarted {
		l.oggStarted = true
		head, _ := opus.AppendPage(nil, opus.Page{Serial: st.serial, Seq: t.seq[v] - 2, First: true}, opus.Head(audio.Rate))
		head, _ = opus.AppendPage(head, opus.Page{Serial: st.serial, Seq: t.seq[v] - 1}, opus.Tags("babelcast "+c.key.room+" "+c.key.lang))
		l.pushAudio(&frame{data: head}, now)
	}
	l.pushAudio(t.ogg[v], now)
}

// opusPackets encodes variant v (1: with the original) of the tick once:
// a whole tick of 20 ms packets, silence where the program has no audio.
func (c *channel) opusPackets(t *opusTick, pf programFrame, v int) [][]byte {
	if t.done[v] {
		return t.packets[v]
	}
	t.done[v] = true
	st := &c.opus
	if st.broken[v] {
		return nil
	}
	if st.enc[v] == nil {
		enc, err := opus.NewEncoder(0)
		if err != nil {
			st.broken[v] = true
			opusErrors.Inc()
			c.h.s.log.Error("no Opus encoder: this channel's Opus listeners get no audio", "room", c.key.room, "lang", c.key.lang, "err", err)
			return nil
		}
		st.enc[v] = enc
		if st.serial == 0 {
			st.serial = rand.Uint32() | 1
		}
		st.seq[v] = 2 // 0 and 1 are for the header pages of the first listener
	}
	pcm := pf.full
	if v == 0 {
		pcm = pf.alone
	}
	n := len(c.silence.data) / 2 // a whole tick: silence after the audio
	samples := audio.AppendSamples(make([]int16, 0, n), pcm)[:n]
	var buf []byte
	var ends []int
	for off := 0; off+opus.FrameSamples <= len(samples); off += opus.FrameSamples {
		var err error
		if buf, err = st.enc[v].Encode(buf, samples[off:off+opus.FrameSamples]); err != nil {
			opusErrors.Inc()
			return nil
		}
		ends = append(ends, len(buf))
	}
	st.encoded.Add(uint64(len(ends)))
	out := make([][]byte, len(ends))
	for i, at := range ends {
		from := 0
		if i > 0 {
			from = ends[i-1]
		}
		out[i] = buf[from:at:at]
	}
	t.packets[v] = out
	return out
}
