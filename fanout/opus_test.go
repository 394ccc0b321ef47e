package fanout

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/test/signal"
)

// sameSignal fails t unless got (decoded) holds want (signal.Compare)
// with the stream going on after it.
func sameSignal(t *testing.T, what string, want, got []int16) {
	t.Helper()
	for _, e := range signal.Compare(want, got) {
		t.Errorf("%s: %s", what, e)
	}
	if !signal.Heard(got, time.Second/2) {
		t.Errorf("%s: the stream does not go on after the signal", what)
	}
}

// publishSignal publishes s as the channel's interpretation, in 100 ms
// frames, all at once (the program plays them at real time).
func (e *env) publishSignal(lang string, s []int16) {
	for i, seq := 0, uint64(1); i < len(s); i, seq = i+2400, seq+1 {
		f := audio.Frame{PCM: audio.Bytes(s[i:min(i+2400, len(s))]), Captured: time.Now(), Speech: true, Voice: "ai"}
		if err := e.pub.PublishMsg(subject.FrameMsg(subject.Out("keynote", lang), f, seq)); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) dialOpus(query string) *client {
	e.t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(e.wsURL("/api/v1/rooms/keynote/listen?"+query), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	c := &client{conn: conn, audio: make(chan []byte, 100000), text: make(chan map[string]any, 1000), done: make(chan struct{})}
	go c.readLoop()
	return c
}

// decodeUntil decodes c's Opus messages until the audio holds the signal
// and half a second after it.
func decodeUntil(t *testing.T, c *client) []int16 {
	t.Helper()
	dec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	deadline := time.After(20 * time.Second)
	for {
		select {
		case b := <-c.audio:
			pks, err := opus.SplitFramed(b)
			if err != nil {
				t.Fatalf("message of %d bytes: %v", len(b), err)
			}
			if len(pks) != 5 {
				t.Errorf("a message holds %d packets, want 5 (one 100 ms tick)", len(pks))
			}
			for _, p := range pks {
				if pcm, err = dec.Decode(pcm, p); err != nil {
					t.Fatal(err)
				}
			}
			if signal.Heard(pcm, 3*time.Second/4) {
				return pcm
			}
		case <-c.done:
			t.Fatalf("connection ended: %v", c.err)
		case <-deadline:
			t.Fatalf("decoded %d samples without the whole signal", len(pcm))
		}
	}
}

// An Opus listener decodes the channel as published: same length (every
// packet there), same envelope, silence around it; the hello says Opus.
func TestOpusListenerHearsTheChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dialOpus("lang=es&codec=opus")
	hello := c.nextText(t, "hello")
	if hello["codec"] != "opus" || hello["sample_rate"] != float64(48000) {
		t.Fatalf("hello %v", hello)
	}
	pcm := e.dial("keynote", "es") // a PCM listener of the same channel
	if pcm.hello.Codec != "pcm" || pcm.hello.SampleRate != 24000 {
		t.Errorf("PCM hello %+v", pcm.hello)
	}
	// The Opus stream flows before anything is said: silence.
	silent := decodeSome(t, c, audio.Rate/2)
	if f, _ := signal.Loud(silent); f >= 0 {
		t.Errorf("audio before anything was published, at sample %d", f)
	}
	sig := signal.Make(2 * time.Second)
	e.publishSignal("es", sig)
	sameSignal(t, "WebSocket", sig, decodeUntil(t, c))
	// The PCM listener of the same channel still gets PCM.
	if b := pcm.nextAudio(t); len(b) == 0 || len(b)%2 != 0 {
		t.Errorf("PCM listener got %d bytes", len(b))
	}
}

// decodeSome decodes at least n samples of c's Opus.
func decodeSome(t *testing.T, c *client, n int) []int16 {
	t.Helper()
	dec, _ := opus.NewDecoder()
	var pcm []int16
	for len(pcm) < n {
		pks, err := opus.SplitFramed(c.nextAudio(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pks {
			if pcm, err = dec.Decode(pcm, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	return pcm
}

// oggPages reads an Ogg stream's pages as they come, checking what a
// player relies on: one serial, sequence numbers without a gap from the
// first header page, granule positions that count the packets (960 a
// 20 ms packet), and every CRC (through opus.Reader).
type oggPages struct {
	t       *testing.T
	r       io.Reader
	raw     bytes.Buffer
	serial  uint32
	seq     uint32
	granule int64
	pages   int
}

func (o *oggPages) next() [][]byte {
	o.t.Helper()
	var h [27]byte
	if _, err := io.ReadFull(o.r, h[:]); err != nil {
		o.t.Fatalf("page %d: %v", o.pages, err)
	}
	if string(h[:4]) != "OggS" {
		o.t.Fatalf("page %d: no OggS", o.pages)
	}
	lacing := make([]byte, h[26])
	if _, err := io.ReadFull(o.r, lacing); err != nil {
		o.t.Fatal(err)
	}
	var pks [][]byte
	for _, l := range lacing {
		p := make([]byte, l)
		if _, err := io.ReadFull(o.r, p); err != nil {
			o.t.Fatal(err)
		}
		pks = append(pks, p) // our packets are all < 255 bytes or end a page
	}
	le := binary.LittleEndian
	serial, seq, gran := le.Uint32(h[14:]), le.Uint32(h[18:]), int64(le.Uint64(h[6:]))
	o.raw.Write(h[:])
	o.raw.Write(lacing)
	for _, p := range pks {
		o.raw.Write(p)
	}
	switch {
	case o.pages == 0:
		if h[5]&0x02 == 0 || string(pks[0][:8]) != "OpusHead" {
			o.t.Fatalf("first page: flags %#x, packet %q", h[5], pks[0])
		}
		o.serial, o.seq = serial, seq
	case serial != o.serial || seq != o.seq+1:
		o.t.Fatalf("page %d: serial %d seq %d after serial %d seq %d", o.pages, serial, seq, o.serial, o.seq)
	case o.pages == 1:
		if string(pks[0][:8]) != "OpusTags" {
			o.t.Fatalf("second page is not OpusTags")
		}
	case o.pages == 2:
		o.granule = gran
	default:
		if gran-o.granule != int64(len(pks))*opus.PacketGranules {
			o.t.Fatalf("page %d: granule %d after %d with %d packets", o.pages, gran, o.granule, len(pks))
		}
		o.granule = gran
	}
	o.seq = seq
	o.pages++
	return pks
}

// The .ogg stream is a radio station: Ogg/Opus from its first byte,
// silence while nobody speaks, the channel's audio as published.
func TestOggStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	pages := &oggPages{t: t, r: e.stream("/api/v1/rooms/keynote/audio/es.ogg", "audio/ogg")}
	pages.next()
	pages.next()
	dec, _ := opus.NewDecoder()
	var pcm []int16
	decode := func() {
		for _, p := range pages.next() {
			var err error
			if pcm, err = dec.Decode(pcm, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	for len(pcm) < audio.Rate/2 { // half a second of silence first
		decode()
	}
	if f, _ := signal.Loud(pcm); f >= 0 {
		t.Fatalf("sound at %d before anything was published", f)
	}
	sig := signal.Make(2 * time.Second)
	e.publishSignal("es", sig)
	for {
		decode()
		if signal.Heard(pcm, 3*time.Second/4) {
			break
		}
	}
	sameSignal(t, "Ogg", sig, pcm)
	// The bytes are a valid Ogg/Opus stream for a standard reader (CRCs).
	r := opus.NewReader(bytes.NewReader(pages.raw.Bytes()))
	n := 0
	for {
		if _, _, err := r.ReadPacket(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("packet %d: %v", n, err)
		}
		n++
	}
	if want := len(pcm) / opus.FrameSamples; n != want {
		t.Errorf("the reader found %d packets, want %d", n, want)
	}
}

// The WAV stream is continuous too: while nobody speaks it carries
// silence at real time, so a player never starves.
func TestWAVStreamCarriesSilence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	wav := e.stream("/api/v1/rooms/keynote/audio/es.wav", "audio/wav")
	b := make([]byte, 44+audio.DurationBytes(time.Second))
	if _, err := io.ReadFull(wav, b); err != nil {
		t.Fatal(err)
	}
	if f, _ := signal.Loud(audio.Samples(b[44:])); f >= 0 {
		t.Errorf("sound at sample %d of a silent channel", f)
	}
}

// However many Opus listeners a channel has (WebSocket and Ogg), each
// variant is encoded once: the channel encodes as many packets as one
// listener receives.
func TestOpusEncodedOncePerChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	var cs []*client
	for range 4 {
		cs = append(cs, e.dialOpus("lang=es&codec=opus"))
	}
	e.stream("/api/v1/rooms/keynote/audio/es.ogg", "audio/ogg")
	e.srv.hub.mu.Lock()
	c := e.srv.hub.channels[chanKey{"keynote", "es"}]
	e.srv.hub.mu.Unlock()
	before := c.opus.encoded.Load()
	got := decodeSome(t, cs[0], audio.Rate) // a second: 50 packets
	encoded := c.opus.encoded.Load() - before
	heard := uint64(len(got) / opus.FrameSamples)
	// The first listener heard what was encoded, give or take what was in
	// flight (a tick or two), not 5 times that.
	if encoded > heard+15 {
		t.Errorf("encoded %d packets while one listener received %d: encoding is not shared", encoded, heard)
	}
	// A listener without the original is another variant: a second encoder.
	alone := e.dialOpus("lang=es&codec=opus&passthrough=false")
	decodeSome(t, alone, audio.Rate/5)
	before = c.opus.encoded.Load()
	heard = uint64(len(decodeSome(t, alone, audio.Rate)) / opus.FrameSamples)
	if encoded := c.opus.encoded.Load() - before; encoded < heard*3/2 || encoded > 2*heard+15 {
		t.Errorf("two variants: encoded %d packets while a listener received %d; want twice", encoded, heard)
	}
}

func TestBadCodecIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if resp, b := e.get("/api/v1/rooms/keynote/listen?lang=es&codec=mp3"); resp.StatusCode != 400 || !strings.Contains(b, "codec") {
		t.Errorf("%d %s", resp.StatusCode, b)
	}
}

// An Opus frame weighs in a listener's queue what its audio lasts, not
// its few bytes: a slow Opus listener is held to the same 3 s of audio as
// a PCM one, not to 150 frames (15 s of ticks).
func TestOpusFramesWeighTheirAudio(t *testing.T) {
	t.Parallel()
	l := testListener(DefaultQueueFrames, 3*time.Second, time.Hour)
	now := time.Now()
	tick := audio.DurationBytes(programTick)
	for i := range 40 { // 4 s of ticks, 100 bytes each
		f := audioFrame(byte(i), 100)
		f.pcmBytes = tick
		l.pushAudio(f, now)
	}
	got, _ := drain(l)
	if len(got) != 30 || got[0] != 10 {
		t.Errorf("queue kept frames %v; want the last 30 (3 s): 10 to 39", got)
	}
}
