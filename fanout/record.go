package fanout

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/kvlease"
	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
)

// The record of an event is kept by one fan-out node per room: the holder
// of the room's record lease (subject.RecordLeaseKey) in the Leases
// bucket. For every channel of the room (the floor, the source language,
// each language) it keeps every final caption line as a cue, timed by when
// the line appeared and when it became final on this node, the clock the
// channel's listeners hear it on; and, where the room has "record":true,
// the channel's program (what its listeners hear, program.go), encoded to
// Opus and kept in segments of at most segmentPackets. A segment goes to
// the store as soon as it is full, so a crash of the node loses at most
// that much; another node takes the lease within its TTL and goes on.
const (
	// segmentPackets is a segment's length in 20 ms packets (5 s).
	segmentPackets = 250
	// recordIdleAfter: a recording pauses after this much silence (the
	// silence is not kept: downloads fill the gap, so nothing moves), and
	// resumes with the next audio. A room nobody speaks in costs nothing,
	// and a talk's last segment is kept this long after its last word.
	recordIdleAfter = 3 * time.Second
	// recordQueue bounds the writes waiting for the store: cues and
	// segments, about 10 minutes of a room's channels at 5 s a segment.
	recordQueue = 1024
	// recordLeaseEvery renews the record lease; it lives subject.LeaseTTL.
	recordLeaseEvery = time.Second
)

// recorders follows rooms and competes for each room's record lease.
type recorders struct {
	s     *Server
	store *record.Store
	log   *slog.Logger

	mu     sync.Mutex
	rooms  map[string]*roomRecorder
	ctx    context.Context // Run's, once it runs
	wg     sync.WaitGroup
	closed bool
}

func newRecorders(s *Server) *recorders {
	return &recorders{s: s, store: s.o.Record, log: s.log.With("part", "record"), rooms: map[string]*roomRecorder{}}
}

// begin lets rooms be recorded until ctx ends; run waits for that end.
func (rs *recorders) begin(ctx context.Context) {
	if rs == nil {
		return
	}
	rs.mu.Lock()
	rs.ctx = ctx
	rs.mu.Unlock()
}

// run waits for ctx to end, then for the room recorders to write what
// they hold.
func (rs *recorders) run(ctx context.Context) {
	if rs == nil {
		return
	}
	<-ctx.Done()
	rs.mu.Lock()
	rs.closed = true
	rs.mu.Unlock()
	rs.wg.Wait()
}

// roomChanged starts or updates room r's recorder.
func (rs *recorders) roomChanged(r *room.Room) {
	if rs == nil {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed || rs.ctx == nil {
		return
	}
	if rr := rs.rooms[r.ID]; rr != nil {
		rr.update(r)
		return
	}
	rr := &roomRecorder{rs: rs, id: r.ID, changed: make(chan struct{}, 1), done: make(chan struct{}), log: rs.log.With("room", r.ID)}
	rr.cur.Store(r)
	ctx, cancel := context.WithCancel(rs.ctx)
	rr.cancel = cancel
	rs.rooms[r.ID] = rr
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		rr.run(ctx)
	}()
}

// roomDeleted stops room id's recorder, dropping what it holds, and
// deletes the room's record if this node kept it (the api role deletes it
// too: whoever comes last finds nothing left).
func (rs *recorders) roomDeleted(id string) {
	if rs == nil {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rr := rs.rooms[id]
	delete(rs.rooms, id)
	if rr == nil {
		return
	}
	rr.discard.Store(true)
	rr.cancel()
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		<-rr.done
		rs.mu.Lock()
		again := rs.rooms[id] != nil // made anew meanwhile: its record is its own
		rs.mu.Unlock()
		if !rr.held.Load() || again {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rs.store.DeleteRoom(ctx, id); err != nil {
			rs.log.Warn("record of a deleted room not deleted; it expires with the retention", "room", id, "err", err)
		}
	}()
}

// roomRecorder competes for one room's record lease and, while it holds
// it, keeps the room's record.
type roomRecorder struct {
	rs      *recorders
	id      string
	log     *slog.Logger
	cur     atomic.Pointer[room.Room]
	changed chan struct{} // the room's configuration changed
	cancel  context.CancelFunc
	done    chan struct{}
	discard atomic.Bool // the room is gone: drop what is not written
	held    atomic.Bool // this node kept the room's record at some time
	speech  spokenAt    // when each language was last spoken on a mic
}

// spokenAt is when speech in each language was heard on the room's mics
// lately: runs of speech frames, on the listeners' clock (a mic's frame
// plays micPrefill after it arrives).
type spokenAt struct {
	mu   sync.Mutex
	runs map[string][]speechRun
}

type speechRun struct{ start, end time.Time }

// Runs of speech: frames closer than runGap are one run; the last
// maxRuns of a language are kept.
const (
	runGap  = 250 * time.Millisecond
	maxRuns = 64
)

func (s *spokenAt) heard(lang string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs == nil {
		s.runs = map[string][]speechRun{}
	}
	runs := s.runs[lang]
	if n := len(runs); n > 0 && at.Sub(runs[n-1].end) <= runGap {
		runs[n-1].end = at
		return
	}
	if len(runs) >= maxRuns {
		runs = append(runs[:0], runs[1:]...)
	}
	s.runs[lang] = append(runs, speechRun{at, at})
}

// runOf is the run of speech in lang a line that began at start belongs
// to: the last run begun by then (the line's first words reach us just
// after they are said); false if none.
func (s *spokenAt) runOf(lang string, start time.Time) (speechRun, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	runs := s.runs[lang]
	for i := len(runs) - 1; i >= 0; i-- {
		if !runs[i].start.After(start.Add(lineLead)) {
			return runs[i], true
		}
	}
	return speechRun{}, false
}

// lineLead is how long after its speech began a line's first words may
// reach the recorder.
const lineLead = 500 * time.Millisecond

func (rr *roomRecorder) update(r *room.Room) {
	rr.cur.Store(r)
	select {
	case rr.changed <- struct{}{}:
	default:
	}
}

// run competes for the lease until ctx ends; each time it holds it, it
// records until the lease is lost.
func (rr *roomRecorder) run(ctx context.Context) {
	defer close(rr.done)
	s := rr.rs.s
	lease := kvlease.New(kvlease.Options{KV: s.o.Leases, Key: subject.RecordLeaseKey(rr.id), TTL: subject.LeaseTTL,
		Every: recordLeaseEvery, Log: rr.log})
	for ctx.Err() == nil {
		err := lease.Claim(ctx, []byte(s.o.Node))
		if err != nil {
			if !errors.Is(err, kvlease.ErrHeld) && ctx.Err() == nil {
				rr.log.Warn("cannot take the record lease", "err", err)
			}
			sleepCtx(ctx, subject.LeaseTTL/2)
			continue
		}
		rr.held.Store(true)
		hctx, cancel := context.WithCancel(ctx)
		kept := make(chan error, 1)
		go func() { kept <- lease.Keep(hctx); cancel() }()
		rr.log.Debug("keeping the room's record")
		rr.record(hctx)
		cancel()
		if err := <-kept; err != nil {
			rr.log.Warn("record lease lost; another node keeps the record", "err", err)
		}
		rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = lease.Release(rctx)
		rcancel()
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// record keeps the room's record until ctx ends: a channel recorder for
// each channel, started again when the room's channels or its record
// setting change.
func (rr *roomRecorder) record(ctx context.Context) {
	w := newRecordWriter(rr)
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan struct{})
	go func() { defer close(wdone); w.run(wctx) }()
	defer func() {
		// Flush what is queued (unless the room is gone), then stop.
		w.close()
		if rr.discard.Load() {
			wcancel()
		}
		<-wdone
		wcancel()
	}()

	// Who speaks when, for the end of the original's lines.
	sub, err := rr.rs.s.o.NC.Subscribe(subject.Mics(rr.id), func(m *nats.Msg) {
		f, _ := subject.FrameOf(m)
		if !f.Speech || len(m.Data) == 0 {
			return
		}
		if f.Lang == "" {
			f.Lang = rr.cur.Load().SourceLanguage
		}
		rr.speech.heard(f.Lang, time.Now().Add(micPrefill))
	})
	if err != nil {
		rr.log.Warn("cannot follow the room's mics; the original's lines end when transcribed", "err", err)
	} else {
		defer func() { _ = sub.Unsubscribe() }()
	}

	running := map[string]*channelRecorder{}
	stopAll := func(keep func(string) bool) {
		for lang, c := range running {
			if keep(lang) {
				continue
			}
			c.stop()
			delete(running, lang)
		}
	}
	defer stopAll(func(string) bool { return false })
	for {
		r := rr.cur.Load()
		want := map[string]bool{wire.Floor: true, r.SourceLanguage: true}
		for _, l := range r.Languages {
			want[l.Code] = true
		}
		stopAll(func(lang string) bool { return want[lang] && running[lang].audio == r.Record })
		for lang := range want {
			if running[lang] != nil {
				continue
			}
			c, err := startChannelRecorder(rr, w, r, lang)
			if err != nil {
				rr.log.Warn("cannot record a channel", "lang", lang, "err", err)
				continue
			}
			running[lang] = c
		}
		select {
		case <-ctx.Done():
			return
		case <-rr.changed:
		}
	}
}
