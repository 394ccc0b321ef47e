package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/kvlease"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
)

// maxNameLen bounds the name a mic gives.
const maxNameLen = 64

// speaker is one speaker connection: one mic of the room, once its start
// message (or its first audio) says which. Its reader (serve's goroutine)
// turns audio into frames; its writer owns every write except control
// frames.
type speaker struct {
	s      *Server
	conn   *websocket.Conn
	roomID string
	key    string // what it authenticated with, to notice rotation
	log    *slog.Logger
	since  time.Time
	ctx    context.Context // ends when the connection does
	held   sync.WaitGroup  // holdSlot, once started

	// question is the audience question this connection speaks for (with
	// its token); nil for a speaker (with the room's key).
	question *question.Question

	// The mic the connection is, once claimed (start, its first audio, or
	// idleClaim); under claimMu until then, read-only after.
	claimMu sync.Mutex
	mic     string
	slot    *kvlease.Lease // the mic's slot, mic.<room>.<mic>

	mu    sync.Mutex
	rm    *room.Room
	rate  int
	name  string
	lang  string               // what the mic speaks now
	level audio.Meter          // of the audio since the last Level message
	live  *livestate.RoomState // the room's mics, channels and listeners
	// For the mic's entry: its level and whether it spoke, over the last
	// second (acc…) and as the entry shows them (shown…).
	accLevel, shownLevel   float64
	accSpeech, shownSpeech bool

	peer
	ready atomic.Bool // "ready" was sent

	// Reader goroutine only.
	started bool
	rs      *audio.Resampler
	opus    *opusInput // the speaker sends Opus (start "codec":"opus")
	vad     *audio.VoiceDetector
	acc     []int16 // 24 kHz samples not yet published
	seq     uint64
	frames  uint64
}

func newSpeaker(s *Server, conn *websocket.Conn, rm *room.Room, key string, log *slog.Logger) *speaker {
	return &speaker{
		s: s, conn: conn, roomID: rm.ID, key: key, log: log, since: time.Now().UTC(),
		rm: rm, rate: audio.Rate, lang: rm.SourceLanguage, live: livestate.NewRoomState(rm.ID),
		accLevel: audio.SilenceDB, shownLevel: audio.SilenceDB, vad: audio.NewVoiceDetector(0),
		peer: newPeer(sendQueue, "speaker_queue_full"),
	}
}

func (sp *speaker) setRoom(rm *room.Room) { sp.mu.Lock(); sp.rm = rm; sp.mu.Unlock() }

func (sp *speaker) room() *room.Room { sp.mu.Lock(); defer sp.mu.Unlock(); return sp.rm }

// id is the mic's place in the server's table: its room and mic.
func (sp *speaker) id() micID { return micID{sp.roomID, sp.mic} }

func (sp *speaker) stateValue() []byte {
	sp.mu.Lock()
	st := livestate.Mic{Node: sp.s.o.Node, Since: sp.since, SampleRate: sp.rate, Name: sp.name, Language: sp.lang,
		Codec: "pcm", LevelDB: sp.shownLevel, Voice: sp.shownSpeech}
	if sp.question != nil {
		st.Question = sp.question.ID
	}
	sp.mu.Unlock()
	return livestate.Encode(st)
}

// serve runs the connection until it ends. The connection becomes a mic of
// the room at its start message, or at its first audio (mic "main").
func (sp *speaker) serve() {
	sp.log.Info("speaker connected", "remote", sp.conn.RemoteAddr().String())
	ctx, cancel := context.WithCancel(sp.s.base)
	sp.ctx = ctx
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); sp.writeLoop() }()
	go func() { defer wg.Done(); sp.watchStatus(ctx) }()
	idle := time.AfterFunc(idleClaim, sp.claimIdle)

	sp.readLoop(sp.conn, sp.s.o.MaxFrame, sp)
	idle.Stop()
	close(sp.readerDone)
	sp.shut(closeReq{code: websocket.CloseAbnormalClosure, quiet: true}) // in case the reader ended first
	if c := sp.closeReq(); c.code == websocket.CloseNormalClosure || c.code == websocket.CloseGoingAway {
		sp.flush() // the speaker's last words still go out
	}
	cancel()
	wg.Wait()
	sp.claimMu.Lock() // an idle claim under way finishes first
	sp.held.Wait()
	sp.claimMu.Unlock()
	sp.conn.Close()
	if sp.slot != nil {
		sp.s.release(sp)
	}
	c := sp.closeReq()
	sp.log.Info("speaker disconnected", "mic", sp.mic, "code", c.code, "reason", c.errCode,
		"frames", sp.frames, "duration", time.Since(sp.since).Round(time.Second))
}

func (sp *speaker) badInput(code int, errCode, message string) {
	metrics.Errors.WithLabelValues(roleName, "bad_input").Inc()
	sp.log.Info("speaker sent bad input", "code", errCode, "message", message)
	sp.close(code, errCode, message)
}

func (sp *speaker) handleText(data []byte) {
	var m wire.Start
	if !decodeText(sp, data, &m) {
		return
	}
	switch m.Type {
	case wire.TypeStart:
		f, ok := startInput(sp, sp.started, m.SampleRate, m.Codec, sp.log)
		if !ok {
			return
		}
		sp.opus = f.opus
		rate := f.rate
		mic := wire.DefaultMic
		if m.Mic != nil {
			mic = *m.Mic
		}
		sp.start(rate, mic, m.Name, m.Language)
	case wire.TypeLanguage:
		if !sp.started {
			sp.badInput(wire.CloseBadMessage, wire.CodeBadMessage, "switch language after the start message")
			return
		}
		sp.switchLanguage(m.Language)
	default:
		unknownType(sp, m.Type, "a speaker sends {\"type\":\"start\"}, {\"type\":\"language\"} and binary PCM")
	}
}

// start fixes how the connection speaks: from the start message, or 24 kHz
// as mic "main" in the room's source language when audio comes first. It
// runs on the reader goroutine.
func (sp *speaker) start(rate int, mic, name, lang string) {
	sp.started = true
	if code, msg := sp.claim(mic, name, lang, rate); code == wire.CodeShuttingDown {
		sp.close(wire.CloseShutdown, wire.CodeShuttingDown, "the server is shutting down; reconnect in a moment")
		return
	} else if code != "" {
		sp.badInput(wire.CloseBadMessage, code, msg)
		return
	}
	sp.rs = inputFormat{rate: rate, opus: sp.opus}.resampler()
	sp.mu.Lock()
	name, lang = sp.name, sp.lang
	sp.mu.Unlock()
	sp.send(wire.Ready{Type: wire.TypeReady, Room: sp.roomID, SampleRate: rate, Mic: sp.mic, Name: name, Language: lang})
	sp.send(sp.status())
	sp.ready.Store(true)
}

// rewriteEntry writes the mic's entry now (its language or level
// changed). While sp does not hold the slot, holdSlot writes it when it
// does.
func (sp *speaker) rewriteEntry() {
	ctx, cancel := context.WithTimeout(sp.s.base, writeWait)
	defer cancel()
	if err := sp.slot.Set(ctx, sp.stateValue()); err != nil && !errors.Is(err, kvlease.ErrNotHeld) {
		metrics.Errors.WithLabelValues(roleName, "state").Inc()
		sp.log.Warn("mic state not rewritten", "err", err)
	}
}

func (sp *speaker) handleAudio(data []byte, now time.Time) {
	in, ok := decodeAudio(sp, sp.opus, data)
	if !ok {
		return
	}
	if !sp.started {
		sp.start(audio.Rate, livestate.DefaultMic, "", "")
		if sp.isClosing() {
			return
		}
	}
	sp.takeSamples(in, now)
}

// takeSamples takes a binary message's audio, at the connection's rate,
// into the mic's frames.
func (sp *speaker) takeSamples(in []int16, now time.Time) {
	metrics.FramesIn.WithLabelValues(roleName).Inc()
	sp.mu.Lock()
	sp.level.Add(in)
	sp.mu.Unlock()
	sp.acc = append(sp.acc, sp.rs.Process(in)...)
	sp.publish(now, false)
}

// publish sends whole frames from acc (and, when final, the rest). The
// newest sample arrived at now; a frame was captured the duration of the
// audio from its start to the newest sample before that.
func (sp *speaker) publish(now time.Time, final bool) {
	frame := sp.s.frame
	n := len(sp.acc)
	off := 0
	sp.mu.Lock()
	lang, name := sp.lang, sp.name
	sp.mu.Unlock()
	for n-off >= frame || (final && n > off) {
		k := min(frame, n-off)
		behind := time.Duration(n-off) * time.Second / audio.Rate
		sp.seq++
		samples := sp.acc[off : off+k]
		f := audio.Frame{PCM: audio.Bytes(samples), Captured: now.Add(-behind), Lang: lang, Speaker: name, Speech: sp.vad.Voice(samples)}
		sp.noteSpeech(f.Speech)
		msg := subject.FrameMsg(subject.Mic(sp.roomID, sp.mic), f, sp.seq)
		if err := sp.s.o.NC.PublishMsg(msg); err != nil {
			metrics.Errors.WithLabelValues(roleName, "publish").Inc()
			if sp.seq%50 == 1 { // don't flood the log while NATS is away
				sp.log.Warn("speaker audio not published", "err", err)
			}
		} else {
			metrics.FramesOut.WithLabelValues(roleName).Inc()
			sp.frames++
		}
		off += k
	}
	sp.acc = sp.acc[:copy(sp.acc, sp.acc[off:])]
}

// noteSpeech remembers that the mic spoke, for its entry.
func (sp *speaker) noteSpeech(speech bool) {
	if speech {
		sp.mu.Lock()
		sp.accSpeech = true
		sp.mu.Unlock()
	}
}

// entryLevelStep is how far the level must move for the entry to be
// rewritten before its next renewal.
const entryLevelStep = 6.0

// showLevel keeps the mic's entry telling how loud it is and whether it
// speaks (the console shows it): every second, when that changed.
func (sp *speaker) showLevel(ctx context.Context) {
	livestate.Every(ctx, time.Second, func() {
		sp.mu.Lock()
		level, speech := sp.accLevel, sp.accSpeech
		sp.accLevel, sp.accSpeech = audio.SilenceDB, false
		changed := speech != sp.shownSpeech || math.Abs(level-sp.shownLevel) >= entryLevelStep
		if changed {
			sp.shownLevel, sp.shownSpeech = level, speech
		}
		sp.mu.Unlock()
		if changed {
			sp.rewriteEntry()
		}
	})
}

// flush publishes what the resampler and the frame buffer still hold.
func (sp *speaker) flush() {
	if sp.rs == nil {
		return
	}
	sp.acc = append(sp.acc, sp.rs.Flush()...)
	sp.publish(time.Now(), true)
}

// takeLevel returns the level of the audio since the last call, if any
// arrived.
func (sp *speaker) takeLevel() (wire.Level, bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	rms, peak, ok := sp.level.Take()
	if !ok {
		return wire.Level{}, false
	}
	sp.accLevel = max(sp.accLevel, rms)
	return wire.Level{Type: wire.TypeLevel, RMSDB: rms, PeakDB: peak}, true
}

// writeLoop owns the connection's writes: queued messages, level and
// status updates and pings, and finally the close.
func (sp *speaker) writeLoop() {
	ping := time.NewTicker(pingInterval)
	level := time.NewTicker(sp.s.o.LevelInterval)
	status := time.NewTicker(sp.s.o.StatusInterval)
	defer ping.Stop()
	defer level.Stop()
	defer status.Stop()
	write := func(b []byte) bool {
		_ = sp.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := sp.conn.WriteMessage(websocket.TextMessage, b); err != nil {
			sp.shut(closeReq{code: websocket.CloseAbnormalClosure, quiet: true})
			return false
		}
		return true
	}
	// drain writes what is queued, so "ready" goes before any level.
	drain := func() bool {
		for {
			select {
			case b := <-sp.out:
				if !write(b) {
					return false
				}
			default:
				return true
			}
		}
	}
	for {
		select {
		case <-sp.closing:
			if !sp.closeReq().quiet {
				drain()
			}
			sp.finish(write)
			return
		case b := <-sp.out:
			write(b)
		case <-level.C:
			if m, ok := sp.takeLevel(); ok && drain() {
				b, _ := json.Marshal(m)
				write(b)
			}
		case <-status.C:
			if sp.ready.Load() && drain() { // status follows ready
				b, _ := json.Marshal(sp.status())
				write(b)
			}
		case <-ping.C:
			if err := sp.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				sp.shut(closeReq{code: websocket.CloseAbnormalClosure, quiet: true})
			}
		}
	}
}

// finish sends the error and close frame, waits briefly for the peer's
// reply (the reader sees it), and hangs up.
func (sp *speaker) finish(write func([]byte) bool) {
	c := sp.closeReq()
	if !c.quiet {
		ok := true
		if c.code != websocket.CloseNormalClosure && c.errCode != "" {
			b, _ := json.Marshal(wire.Error{Type: wire.TypeError, Code: c.errCode, Message: c.message})
			ok = write(b)
		}
		if ok {
			reason := c.errCode
			if len(reason) > 120 {
				reason = reason[:120]
			}
			_ = sp.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, reason), time.Now().Add(writeWait))
		}
		select {
		case <-sp.readerDone:
		case <-time.After(closeGrace):
		}
	}
	sp.conn.Close() // unblocks the reader if it still waits
}

// watchStatus follows the room's entries in the state bucket for the
// status messages.
func (sp *speaker) watchStatus(ctx context.Context) {
	for u := range livestate.Watch(ctx, sp.s.o.State, livestate.WatchOptions{
		Keys: livestate.RoomKeys(sp.roomID), Log: sp.log, What: "status watch",
	}) {
		sp.mu.Lock()
		sp.live.Apply(u)
		sp.mu.Unlock()
	}
}

// status is the status message: the room's channels as the state bucket
// describes them.
func (sp *speaker) status() wire.Status {
	sp.mu.Lock()
	st := sp.live.Status(sp.rm)
	own := wire.MicStatus{Mic: sp.mic, Name: sp.name, Language: sp.lang}
	sp.mu.Unlock()
	m := wire.Status{Type: wire.TypeStatus, Speaker: true, Languages: []wire.LangStatus{}, FloorListeners: st.Floor.Listeners, Mics: []wire.MicStatus{}}
	for _, l := range st.Languages {
		m.Languages = append(m.Languages, wire.LangStatus{Code: l.Code, State: l.State, Listeners: l.Listeners, Error: l.Error})
	}
	listed := false
	for _, mic := range st.Mics {
		m.Mics = append(m.Mics, wire.MicStatus{Mic: mic.ID, Name: mic.Name, Language: mic.Language})
		listed = listed || mic.ID == own.Mic
	}
	// The status sent with ready comes before the state bucket shows this
	// mic's own entry: it is live, the newest of the room's mics.
	if !listed && own.Mic != "" {
		m.Mics = append(m.Mics, own)
	}
	return m
}
