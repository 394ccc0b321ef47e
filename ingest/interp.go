package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/internal/booth"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
)

// Codecs of what an interpreter hears (?codec=).
const (
	codecPCM  = "pcm"
	codecOpus = "opus" // 20 ms packets, length-prefixed, as a listener's
)

const (
	// hearQueue bounds the audio waiting for a slow interpreter's
	// connection (100 ms a message); past it, new audio is dropped.
	hearQueue = 20
	// captionFollow: the floor's captions come from one translator at a
	// time; another is followed once it has been silent this long.
	captionFollow = 5 * time.Second
)

// interp is one interpreter's booth connection. Its reader (serve's
// goroutine) takes the interpreter's audio and messages; its writer owns
// every write; the booth watch decides whether it is on air.
type interp struct {
	s              *Server
	conn           *websocket.Conn
	roomID, source string
	lang, hear     string
	codec          string // of what it hears: codecPCM or codecOpus
	key, id        string
	log            *slog.Logger
	since          time.Time

	peer
	audio chan []byte // what the interpreter hears; full → dropped

	mu     sync.Mutex
	name   string
	wants  bool      // took the air and has not handed it over
	tookAt time.Time // when
	muted  bool
	live   bool // on air per the booth's entries: its audio goes out
	lvlRMS float64
	lvlPk  float64
	lvlN   int

	// Reader goroutine only.
	started bool
	opus    *opusInput // with "codec":"opus": what decodes the binary messages
	rs      *audio.Resampler
	vad     *audio.VoiceDetector
	acc     []int16
	seq     uint64
	spoke   time.Time // the interpreter's last word on air (zero: none since the take)
}

func newInterp(s *Server, conn *websocket.Conn, rm *room.Room, lang, hear, key string, log *slog.Logger) *interp {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	id := hex.EncodeToString(b)
	return &interp{
		s: s, conn: conn, roomID: rm.ID, source: rm.SourceLanguage, lang: lang, hear: hear, key: key, id: id,
		log: log.With("conn", id), since: time.Now().UTC(),
		peer: newPeer(sendQueue, "booth_queue_full"), audio: make(chan []byte, hearQueue),
		rs: audio.NewResampler(audio.Rate, audio.Rate), vad: audio.NewVoiceDetector(0),
		lvlRMS: audio.SilenceDB, lvlPk: audio.SilenceDB,
	}
}

// serve runs the connection until it ends.
func (c *interp) serve() {
	c.log.Info("interpreter connected", "hear", c.hear, "remote", c.conn.RemoteAddr().String())
	ctx, cancel := context.WithCancel(c.s.base)
	ready := wire.BoothReady{Type: wire.TypeReady, Room: c.roomID, Lang: c.lang, Hear: c.hear, Codec: c.codec, SampleRate: audio.Rate, Conn: c.id}
	if c.codec == codecOpus {
		ready.SampleRate = opus.ClockRate
	}
	c.send(ready)
	c.writeEntry(ctx)
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); c.writeLoop() }()
	go func() { defer wg.Done(); c.watchBooth(ctx) }()
	go func() { defer wg.Done(); c.feed(ctx) }()
	go func() { defer wg.Done(); livestate.Every(ctx, c.s.o.Refresh, func() { c.writeEntry(ctx) }) }()
	c.readLoop(c.conn, c.s.o.MaxFrame, c)
	close(c.readerDone)
	c.shut(closeReq{code: websocket.CloseAbnormalClosure, quiet: true})
	c.offAir()
	cancel()
	wg.Wait()
	c.conn.Close()
	dctx, dcancel := context.WithTimeout(context.Background(), writeWait)
	defer dcancel()
	if err := c.s.o.State.Delete(dctx, livestate.InterpreterKey(c.roomID, c.lang, c.id)); err != nil {
		c.log.Warn("interpreter entry not deleted; it expires by itself", "err", err)
	}
	c.log.Info("interpreter disconnected", "code", c.closeReq().code, "duration", time.Since(c.since).Round(time.Second))
}

// entry is the connection's entry in the state bucket.
func (c *interp) entry() livestate.Interpreter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return livestate.Interpreter{Node: c.s.o.Node, Since: c.since, Name: c.name, OnAir: c.wants, TookAt: c.tookAt,
		Muted: c.muted, Hear: c.hear}
}

func (c *interp) writeEntry(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, writeWait)
	defer cancel()
	if _, err := c.s.o.State.Put(wctx, livestate.InterpreterKey(c.roomID, c.lang, c.id), livestate.Encode(c.entry())); err != nil && ctx.Err() == nil {
		metrics.Errors.WithLabelValues(roleName, "state").Inc()
		c.log.Warn("interpreter entry not written; will retry", "err", err)
	}
}

// watchBooth follows the booth's entries: who is on air, who is there.
// Every connection of the booth tells its interpreter when that changes.
func (c *interp) watchBooth(ctx context.Context) {
	rs := livestate.NewRoomState(c.roomID)
	var last []byte
	for u := range livestate.Watch(ctx, c.s.o.State, livestate.WatchOptions{
		Keys: []string{livestate.BoothKeys(c.roomID, c.lang)}, Log: c.log, What: "booth watch",
	}) {
		rs.Apply(u)
		m := wire.OnAir{Type: wire.TypeOnAir, Interpreters: []wire.Interpreter{}}
		for _, in := range rs.Booth(c.lang) {
			m.Interpreters = append(m.Interpreters, wire.Interpreter{Conn: in.Conn, Name: in.Name, OnAir: in.OnAir, Muted: in.Muted, Hear: in.Hear})
			if in.OnAir {
				m.Name, m.Muted, m.OnAir = in.Name, in.Muted, in.Conn == c.id
			}
		}
		c.mu.Lock()
		c.live = m.OnAir && c.wants // a hand-over of ours may be newer than this update
		lost := c.wants && !m.OnAir && holderSince(rs.Booth(c.lang)).After(c.tookAt)
		if lost {
			c.wants = false // the partner took the air: we are off, not waiting for it back
		}
		c.mu.Unlock()
		if lost {
			c.writeEntry(ctx)
		}
		if b, _ := json.Marshal(m); string(b) != string(last) {
			last = b
			c.send(m)
		}
	}
}

// holderSince is when the interpreter on air took it (zero: nobody is).
func holderSince(in []livestate.BoothInterpreter) time.Time {
	for _, x := range in {
		if x.OnAir {
			return x.TookAt
		}
	}
	return time.Time{}
}

func (c *interp) badInput(code int, errCode, message string) {
	metrics.Errors.WithLabelValues(roleName, "bad_input").Inc()
	c.log.Info("interpreter sent bad input", "code", errCode, "message", message)
	c.close(code, errCode, message)
}

// boothMessage is any message an interpreter sends.
type boothMessage struct {
	Type       string `json:"type"`
	SampleRate *int   `json:"sample_rate"`
	Codec      string `json:"codec"`
	Name       string `json:"name"`
	Muted      *bool  `json:"muted"`
}

func (c *interp) handleText(data []byte) {
	var m boothMessage
	if !decodeText(c, data, &m) {
		return
	}
	switch m.Type {
	case wire.TypeStart:
		f, ok := startInput(c, c.started, m.SampleRate, m.Codec, c.log)
		if !ok {
			return
		}
		c.opus = f.opus
		c.started = true
		c.rs = f.resampler()
		c.mu.Lock()
		c.name = cleanName(m.Name)
		c.mu.Unlock()
		c.writeEntry(c.s.base)
	case wire.TypeTake:
		c.spoke = time.Time{} // listeners hear them from their next word
		c.mu.Lock()
		c.wants, c.tookAt, c.muted = true, time.Now().UTC(), false
		c.mu.Unlock()
		c.writeEntry(c.s.base)
		c.log.Info("interpreter took the air")
	case wire.TypeHandOver:
		c.mu.Lock()
		c.wants = false
		c.mu.Unlock()
		c.offAir()
		c.writeEntry(c.s.base)
		c.log.Info("interpreter handed over")
	case wire.TypeMute:
		if m.Muted == nil {
			c.badInput(wire.CloseBadMessage, wire.CodeBadMessage, `mute needs "muted": true or false`)
			return
		}
		c.mu.Lock()
		c.muted = *m.Muted
		c.mu.Unlock()
		if *m.Muted {
			c.offAir()
		}
		c.writeEntry(c.s.base)
	default:
		unknownType(c, m.Type, "an interpreter sends start, take, hand_over, mute and binary PCM")
	}
}

// offAir tells the channel at once that this interpreter's voice stops,
// if it was on air: listeners get the AI without waiting for booth.Stale.
func (c *interp) offAir() {
	c.mu.Lock()
	was := c.live
	c.live = false
	c.mu.Unlock()
	if was {
		if err := c.s.o.NC.Publish(subject.Booth(c.roomID, c.lang, c.id), nil); err != nil {
			metrics.Errors.WithLabelValues(roleName, "publish").Inc()
		}
	}
}

func (c *interp) handleAudio(data []byte, now time.Time) {
	in, ok := decodeAudio(c, c.opus, data)
	if !ok {
		return
	}
	c.started = true
	c.takeSamples(in, now)
}

// takeSamples publishes an interpreter's samples (at the start message's
// rate) in frames, while they are on air and not muted.
func (c *interp) takeSamples(in []int16, now time.Time) {
	rms, peak := audio.Level(in)
	c.mu.Lock()
	c.lvlRMS, c.lvlPk, c.lvlN = max(c.lvlRMS, rms), max(c.lvlPk, peak), c.lvlN+1
	c.mu.Unlock()
	c.acc = append(c.acc, c.rs.Process(in)...)
	frame := c.s.frame
	off := 0
	for len(c.acc)-off >= frame {
		samples := c.acc[off : off+frame]
		behind := time.Duration(len(c.acc)-off) * time.Second / audio.Rate
		speech := c.vad.Voice(samples)
		off += frame
		c.mu.Lock()
		live, name := c.live && !c.muted, c.name
		c.mu.Unlock()
		if !live {
			continue
		}
		c.seq++
		f := audio.Frame{PCM: audio.Bytes(samples), Captured: now.Add(-behind), Lang: c.lang, Speaker: name, Speech: speech, Voice: booth.Human}
		msg := subject.FrameMsg(subject.Booth(c.roomID, c.lang, c.id), f, c.seq)
		if speech {
			c.spoke = f.Captured
		}
		if !c.spoke.IsZero() {
			msg.Header.Set(subject.HeaderSilent, strconv.FormatInt(max(0, f.Captured.Sub(c.spoke).Milliseconds()), 10))
		}
		if err := c.s.o.NC.PublishMsg(msg); err != nil {
			metrics.Errors.WithLabelValues(roleName, "publish").Inc()
		} else {
			metrics.FramesOut.WithLabelValues(roleName).Inc()
		}
	}
	c.acc = c.acc[:copy(c.acc, c.acc[off:])]
}

// writeLoop owns the connection's writes.
func (c *interp) writeLoop() {
	ping := time.NewTicker(pingInterval)
	level := time.NewTicker(c.s.o.LevelInterval)
	defer ping.Stop()
	defer level.Stop()
	write := func(mt int, b []byte) bool {
		_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := c.conn.WriteMessage(mt, b); err != nil {
			c.shut(closeReq{code: websocket.CloseAbnormalClosure, quiet: true})
			return false
		}
		return true
	}
	for {
		select {
		case <-c.closing:
			c.finish(write)
			return
		case b := <-c.out:
			write(websocket.TextMessage, b)
		case b := <-c.audio:
			write(websocket.BinaryMessage, b)
		case <-level.C:
			c.mu.Lock()
			m, ok := wire.Level{Type: wire.TypeLevel, RMSDB: c.lvlRMS, PeakDB: c.lvlPk}, c.lvlN > 0
			c.lvlRMS, c.lvlPk, c.lvlN = audio.SilenceDB, audio.SilenceDB, 0
			c.mu.Unlock()
			if ok {
				b, _ := json.Marshal(m)
				write(websocket.TextMessage, b)
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.shut(closeReq{code: websocket.CloseAbnormalClosure, quiet: true})
			}
		}
	}
}

// finish sends the error and the close frame, waits briefly for the
// peer's reply, and hangs up.
func (c *interp) finish(write func(int, []byte) bool) {
	r := c.closeReq()
	if !r.quiet {
		ok := true
		if r.code != websocket.CloseNormalClosure && r.errCode != "" {
			b, _ := json.Marshal(wire.Error{Type: wire.TypeError, Code: r.errCode, Message: r.message})
			ok = write(websocket.TextMessage, b)
		}
		if ok {
			_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(r.code, r.errCode), time.Now().Add(writeWait))
		}
		select {
		case <-c.readerDone:
		case <-time.After(closeGrace):
		}
	}
	c.conn.Close()
}

// encodeOpus encodes a tick of PCM as length-prefixed 20 ms Opus packets.
func encodeOpus(enc *opus.Encoder, pcm []byte) []byte {
	samples := audio.Samples(pcm)
	var msg, packet []byte
	for off := 0; off+opus.FrameSamples <= len(samples); off += opus.FrameSamples {
		var err error
		if packet, err = enc.Encode(packet[:0], samples[off:off+opus.FrameSamples]); err == nil {
			msg = opus.AppendFramed(msg, packet)
		}
	}
	return msg
}

// feed sends the interpreter what they hear, on a 100 ms clock: the
// floor (every mic), or the relayed channel as its listeners hear it
// (its mics while they speak its language, and its voice: its booth's
// interpreter or the AI, chosen as fanout chooses), and the floor's
// caption lines as a crib.
func (c *interp) feed(ctx context.Context) {
	mix := audio.NewMixer(audio.MixerOptions{Prefill: 150 * time.Millisecond, MaxDelay: time.Second})
	voice := booth.NewTracker(booth.SilenceLimit)
	relay := c.hear != wire.Floor
	var subs []*nats.Subscription
	sub := func(subj string, cb nats.MsgHandler) {
		s, err := c.s.o.NC.Subscribe(subj, cb)
		if err != nil {
			c.log.Warn("booth feed not subscribed", "subject", subj, "err", err)
			return
		}
		subs = append(subs, s)
	}
	frameOf := func(m *nats.Msg) (audio.Frame, bool) {
		if len(m.Data)%2 != 0 {
			return audio.Frame{}, false
		}
		f, _ := subject.FrameOf(m)
		if f.Lang == "" {
			f.Lang = c.source
		}
		return f, len(m.Data) > 0
	}
	sub(subject.Mics(c.roomID), func(m *nats.Msg) {
		f, ok := frameOf(m)
		switch {
		case !ok:
		case !relay || f.Lang == c.hear:
			mix.Push(f, time.Now())
		case f.Speech:
			voice.Floor(time.Now())
		}
	})
	if relay {
		sub(subject.Out(c.roomID, c.hear), func(m *nats.Msg) {
			if f, ok := frameOf(m); ok && !voice.Human(time.Now()) {
				f.Mic = booth.AI
				mix.Push(f, time.Now())
			}
		})
		sub(subject.Booths(c.roomID, c.hear), func(m *nats.Msg) {
			f, ok := frameOf(m)
			if !ok {
				voice.Off()
				return
			}
			silent, spoke := subject.SilentFor(m)
			voice.Frame(f.Speech, silent, spoke, time.Now())
			if voice.Human(time.Now()) {
				mix.Push(f, time.Now())
			}
		})
	}
	var capMu sync.Mutex
	var capFrom string
	var capLast time.Time
	sub(subject.SourceCaptions(c.roomID), func(m *nats.Msg) {
		var cm wire.Caption
		if len(m.Data) > 64<<10 || json.Unmarshal(m.Data, &cm) != nil {
			return
		}
		from := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		now := time.Now()
		capMu.Lock()
		if from != capFrom && now.Sub(capLast) < captionFollow {
			capMu.Unlock()
			return
		}
		capFrom, capLast = from, now
		capMu.Unlock()
		cm.Type, cm.Source = wire.TypeCaption, true
		if cm.Lang == "" {
			cm.Lang = cm.SourceLanguage
		}
		c.send(cm)
	})
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	var enc *opus.Encoder
	if c.codec == codecOpus {
		var err error
		if enc, err = opus.NewEncoder(0); err != nil {
			c.log.Error("booth feed: no Opus encoder", "err", err)
			c.close(wire.CloseShutdown, wire.CodeShuttingDown, "the server cannot encode Opus now; reconnect with codec=pcm")
			return
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	n := audio.DurationBytes(100*time.Millisecond) / 2 // five Opus packets
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			m := mix.Mix(n, now)
			if !m.Live() {
				continue
			}
			msg := m.PCM
			if enc != nil {
				if msg = encodeOpus(enc, m.PCM); len(msg) == 0 {
					continue
				}
			}
			select {
			case c.audio <- msg:
			default:
				metrics.FramesDropped.WithLabelValues(roleName, "booth_slow").Inc()
			}
		}
	}
}
