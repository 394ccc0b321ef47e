package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/internal/wire"
)

// Catching up: a listener who joins late gets what was said on the
// channel before (wire.Earlier, after the hello), and older lines on
// request (GET /api/v1/rooms/{id}/earlier), under the listener's own
// authorization: the room, the language and its passcode.
const (
	// earlierLines is how many lines a listener gets at once.
	earlierLines = 30
	// maxEarlierLines bounds ?limit=.
	maxEarlierLines = 200
	// earlierFresh: listeners joining within this of each other share one
	// read of the channel's transcript.
	earlierFresh = 2 * time.Second
	// earlierWait bounds the read on a listener's join.
	earlierWait = time.Second
)

// earlierCache holds channels' transcripts briefly, so a crowd joining at
// once reads each once; a failed read is remembered as briefly, so a
// crowd does not retry it either. Channels are read independently.
//
// A read runs on its own, bounded by earlierRead, and those who want it
// wait only as long as their context lets them: a store that answers
// slowly (a leader election, a consumer being recreated) holds a joining
// listener up for earlierWait at most, not for as long as the store takes.
type earlierCache struct {
	mu    sync.Mutex
	read  map[chanKey]*cachedCues
	store cueReader
	log   *slog.Logger

	// The reads are the cache's: stop ends them (at shutdown), and
	// close waits for them.
	stop    context.Context
	stopped context.CancelFunc
	reads   sync.WaitGroup
}

func newEarlierCache(store cueReader, log *slog.Logger) *earlierCache {
	ec := &earlierCache{store: store, log: log}
	ec.stop, ec.stopped = context.WithCancel(context.Background())
	return ec
}

// close ends the reads in flight and waits for them.
func (ec *earlierCache) close() {
	ec.mu.Lock()
	ec.stopped()
	ec.mu.Unlock()
	ec.reads.Wait()
}

// cueReader reads a channel's transcript: the record's store.
type cueReader interface {
	ReadCues(ctx context.Context, room, lang string) ([]record.Cue, error)
}

// cachedCues is one channel's read: done is closed once cues and err are
// set (and at when they were).
type cachedCues struct {
	done chan struct{}
	at   time.Time
	cues []record.Cue
	err  error
}

// earlierRead bounds one read of a channel's transcript, whoever waits.
const earlierRead = 10 * time.Second

func (ec *earlierCache) cues(ctx context.Context, k chanKey) ([]record.Cue, error) {
	ec.mu.Lock()
	if ec.read == nil || len(ec.read) > 1000 {
		ec.read = map[chanKey]*cachedCues{}
	}
	if err := ec.stop.Err(); err != nil {
		ec.mu.Unlock()
		return nil, errors.New("shutting down") // no read starts after close
	}
	c := ec.read[k]
	if c == nil || c.stale() {
		c = &cachedCues{done: make(chan struct{})}
		ec.read[k] = c
		// Owned by the cache, ended by earlierRead or close: the
		// transcript's reader does not depend on who asked first staying.
		// A failure is logged here, once, not by each listener it fails.
		ec.reads.Add(1)
		go func() {
			defer ec.reads.Done()
			rctx, cancel := context.WithTimeout(ec.stop, earlierRead)
			defer cancel()
			c.cues, c.err = ec.store.ReadCues(rctx, k.room, k.lang)
			c.at = time.Now()
			close(c.done)
			if c.err != nil && ec.stop.Err() == nil {
				ec.log.Warn("cannot read a channel's transcript for listeners catching up", "room", k.room, "lang", k.lang, "err", c.err)
			}
		}()
	}
	ec.mu.Unlock()

	select {
	case <-c.done:
		return c.cues, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stale reports whether the read is in and older than earlierFresh.
func (c *cachedCues) stale() bool {
	select {
	case <-c.done:
		return time.Since(c.at) >= earlierFresh
	default:
		return false // still reading: join it
	}
}

// earlier is the last limit lines of channel k said before before (zero:
// now).
func (ec *earlierCache) earlier(ctx context.Context, k chanKey, before time.Time, limit int) (wire.Earlier, error) {
	out := wire.Earlier{Type: wire.TypeEarlier, Lang: k.lang, Captions: []wire.EarlierLine{}}
	cues, err := ec.cues(ctx, k)
	if err != nil {
		return out, err
	}
	end := len(cues)
	if !before.IsZero() {
		for end > 0 && !cues[end-1].Start.Before(before) {
			end--
		}
	}
	from := max(0, end-limit)
	out.More = from > 0
	for _, c := range cues[from:end] {
		out.Captions = append(out.Captions, wire.EarlierLine{Text: c.Text, Speaker: c.Speaker, SourceLanguage: c.SourceLanguage,
			Source: c.Original, Start: c.Start.UTC().Format(time.RFC3339Nano), End: c.End.UTC().Format(time.RFC3339Nano)})
	}
	return out, nil
}

// sendEarlier queues what was said before l joined, if anything. A store
// slow to answer (a leader election) costs the joining listener at most
// earlierWait, and then only these lines.
func (s *Server) sendEarlier(ctx context.Context, l *listener) {
	if s.earlier == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, earlierWait)
	defer cancel()
	e, err := s.earlier.earlier(ctx, chanKey{l.room, l.lang}, time.Time{}, earlierLines)
	if err != nil {
		// The read's own failure is logged once, by the cache.
		s.log.Debug("joined without what was said before", "room", l.room, "lang", l.lang, "err", err)
		return
	}
	if len(e.Captions) > 0 {
		l.pushText(textFrame(e))
	}
}

// handleEarlier serves older lines of a channel to anyone who may listen
// to it: ?lang= (required), ?before= (RFC 3339; default now), ?limit=
// (default earlierLines), the passcode as for listening (or in the header
// X-Babelcast-Passcode).
func (s *Server) handleEarlier(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var before time.Time
	if v := q.Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			httperr.BadRequest(w, "before must be an RFC 3339 time, not "+quote(v))
			return
		}
		before = t
	}
	limit := earlierLines
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxEarlierLines {
			httperr.BadRequest(w, "limit must be 1 to "+strconv.Itoa(maxEarlierLines))
			return
		}
		limit = n
	}
	adm, err := s.admit(r, q.Get("lang"), "earlier")
	if err != nil {
		writeAdmitError(w, err)
		return
	}
	defer adm.release()
	if p := r.Header.Get(wire.HeaderPasscode); p != "" {
		adm.passcode = p // the page's way: never in a URL
	}
	if !adm.authorize() {
		httperr.Forbidden(w, "wrong or missing passcode")
		return
	}
	if s.earlier == nil {
		httperr.NotFound(w, "this service keeps no transcripts")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	e, err := s.earlier.earlier(ctx, chanKey{adm.room.ID, adm.lang}, before, limit)
	if err != nil {
		s.log.Warn("read earlier captions", "room", adm.room.ID, "err", err)
		httperr.Unavailable(w, 2*time.Second, "the transcript store is not answering; try again")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(e)
}
