package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/test/signal"
)

// Opus transports (-transport opus: the listener WebSocket with
// ?codec=opus; -transport ogg: the .ogg stream, or with -target an
// Icecast Ogg/Opus mount). Encoded audio cannot carry a frame's sequence
// number and publish time, so the source is shaped instead: 100 ms frames
// in groups of ten, one of near silence then nine of speech-like sound
// (test/signal). A listener sees the silence as small packets and each
// return of sound as large ones: every onset is a marker, told by its
// time (due at start + (10k+1) × 100 ms; latency must stay under the
// group's second for that), for the delivered share and the added latency:
// the publisher tells the clients when it actually published each marker,
// and they count from then, as the PCM rows count from the time a frame
// carries. The bytes received give the egress per listener
// (sound 90 % of the time, and during sound alone), and the packets
// received (50 a second in a continuous stream) show none went missing.

// markerGroup is frames per marker: one of silence, then sound.
const markerGroup = 10

// loudPacket: a 20 ms packet of sound at 32 kbit/s is 75–150 bytes; one
// of digital silence 3 to 32 (3 once the sound's tail has gone).
const loudPacket = 50

// opusTransport reports whether the bench runs on encoded audio.
func opusTransport(t string) bool { return t == "opus" || t == "ogg" }

// markerSource makes the shaped source's frames.
type markerSource struct {
	speech []int16
}

func newMarkerSource() *markerSource { return &markerSource{speech: signal.Make(4 * time.Second)} }

// frame returns frame seq (from 1) of frameDur as PCM16LE.
func (m *markerSource) frame(seq uint64, frameDur time.Duration) []byte {
	n := int(frameDur.Seconds() * audio.Rate)
	if (seq-1)%markerGroup == 0 {
		// Near silence, not digital zero: the voice goes on (no new
		// prefill in the program's mixer), as the PCM benchmark's does.
		q := make([]int16, n)
		for i := range q {
			q[i] = 1
		}
		return audio.Bytes(q)
	}
	off := int(seq) * n % (len(m.speech) - n)
	return audio.Bytes(m.speech[off : off+n])
}

// markersIn is how many markers (onsets of sound) published frames hold.
func markersIn(published uint64) uint64 {
	if published < 2 {
		return 0
	}
	return (published-2)/markerGroup + 1
}

// oggSource encodes the shaped source as an Ogg/Opus stream, for a
// server (Icecast) that takes a source rather than NATS.
type oggSource struct {
	enc *opus.Encoder
	w   *opus.Writer
}

func newOggSource(w io.Writer) (*oggSource, error) {
	enc, err := opus.NewEncoder(0)
	if err != nil {
		return nil, err
	}
	ow, err := opus.NewWriter(w, 7, "babelcast bench")
	if err != nil {
		return nil, err
	}
	return &oggSource{enc: enc, w: ow}, nil
}

// write encodes one frame of PCM as one page.
func (o *oggSource) write(pcm []byte) error {
	s := audio.Samples(pcm)
	var pks [][]byte
	for i := 0; i+opus.FrameSamples <= len(s); i += opus.FrameSamples {
		p, err := o.enc.Encode(nil, s[i:i+opus.FrameSamples])
		if err != nil {
			return err
		}
		pks = append(pks, p)
	}
	return o.w.WritePackets(pks...)
}

// opusCounters are the clients' shared figures.
type opusCounters struct {
	start     atomic.Int64 // unix ns of the first frame's publish; 0 before
	frame     time.Duration
	limit     atomic.Uint64 // frames published (markers past them are not counted)
	markers   atomic.Uint64
	bytes     atomic.Uint64 // received while measuring, framing included
	packets   atomic.Uint64
	loudBytes atomic.Uint64 // of groups with sound, for the speech bitrate
	loudPkts  atomic.Uint64

	mu     sync.Mutex
	onsets []onset // every listener's, for the latencies once the publish times are known
}

// onset is marker k received at (unix ns).
type onset struct{ k, at int64 }

// latencies adds, for every onset, receipt minus the marker's publish time
// (sent[k], unix ns), in µs.
func (c *opusCounters) latencies(sent []int64, add func(us float64)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.onsets {
		if o.k < int64(len(sent)) {
			add(float64(o.at-sent[o.k]) / 1000)
		}
	}
}

// listener follows one connection's ticks.
type opusListener struct {
	c         *opusCounters
	prevLoud  bool
	lastOnset int64 // the marker last counted, so one is never counted twice
}

// tick takes one message (WebSocket) or page (Ogg) of packets, size bytes
// on the wire, received at now.
func (l *opusListener) tick(pks [][]byte, size int, now time.Time) {
	start := l.c.start.Load()
	if start == 0 {
		return
	}
	// The first packets of silence still carry the sound's tail; the
	// last of a tick tells.
	loud := len(pks) > 0 && len(pks[len(pks)-1]) > loudPacket
	l.c.bytes.Add(uint64(size))
	l.c.packets.Add(uint64(len(pks)))
	if loud {
		l.c.loudBytes.Add(uint64(size))
		l.c.loudPkts.Add(uint64(len(pks)))
	}
	if loud && !l.prevLoud {
		group := time.Duration(markerGroup) * l.c.frame
		since := time.Duration(now.UnixNano()-start) - l.c.frame
		k := int64(since / group)
		if since >= 0 && k != l.lastOnset && uint64(k)*markerGroup+2 <= l.c.limit.Load() {
			l.lastOnset = k
			l.c.markers.Add(1)
			l.c.mu.Lock()
			l.c.onsets = append(l.c.onsets, onset{k, now.UnixNano()})
			l.c.mu.Unlock()
		}
	}
	l.prevLoud = loud
}

// readOpusWS reads a listener WebSocket of Opus messages until it ends.
func readOpusWS(conn *websocket.Conn, l *opusListener) error {
	for {
		typ, b, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		if typ != websocket.BinaryMessage {
			serverDelay.note(b)
			continue
		}
		pks, err := opus.SplitFramed(b)
		if err != nil {
			return err
		}
		hdr := 2
		if len(b) >= 126 {
			hdr = 4
		}
		l.tick(pks, len(b)+hdr, time.Now())
	}
}

// readOgg reads an Ogg stream page by page until it ends.
func readOgg(r io.Reader, l *opusListener) error {
	br := bufio.NewReaderSize(r, 8192)
	var h [27]byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return err
		}
		if string(h[:4]) != "OggS" {
			return fmt.Errorf("lost Ogg sync")
		}
		lacing := make([]byte, h[26])
		if _, err := io.ReadFull(br, lacing); err != nil {
			return err
		}
		var pks [][]byte
		var pk []byte
		size := len(h) + len(lacing)
		for _, n := range lacing {
			b := make([]byte, n)
			if _, err := io.ReadFull(br, b); err != nil {
				return err
			}
			size += int(n)
			pk = append(pk, b...)
			if n < 255 {
				pks = append(pks, pk)
				pk = nil
			}
		}
		if binary.LittleEndian.Uint64(h[6:]) == 0 {
			continue // header pages
		}
		l.tick(pks, size, time.Now())
	}
}
