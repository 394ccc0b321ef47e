package ingest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/wire"
)

// The booth of a channel: human interpreters beside the AI.
//
// GET /api/v1/rooms/{id}/booth/{lang}, with the language's booth key as a
// speaker's key (bearer, subprotocol or ?key=), is one interpreter's
// connection (interp.go). It starts off air; "take" puts it on air (the
// partner goes off), "hand_over" takes it off, "mute" silences it. While
// on air and not muted its audio goes out on subject.Booth, where fanout
// and the translator pick it up (internal/booth chooses the channel's
// voice). Back to the interpreter goes the floor, or with ?hear=<lang> the
// channel lang as its listeners hear it (relay), as PCM at wire.SampleRate.

// MaxInterpreters bounds the connections of one booth on a node: a pair
// of interpreters and spares, not a crowd holding a leaked key.
const MaxInterpreters = 8

// boothSet is the interpreter connections of this node, and the seats
// taken in each booth (a seat is taken before the upgrade, so that
// connections arriving together cannot pass MaxInterpreters).
type boothSet struct {
	mu    sync.Mutex
	conns map[*interp]struct{}
	seats map[[2]string]int // (room, lang) → seats taken
}

// sit takes a seat in booth (id, lang), or reports that it is full.
func (b *boothSet) sit(id, lang string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := [2]string{id, lang}
	if b.seats[k] >= MaxInterpreters {
		return false
	}
	if b.seats == nil {
		b.seats = map[[2]string]int{}
	}
	b.seats[k]++
	return true
}

// stand gives back a seat taken by sit.
func (b *boothSet) stand(id, lang string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := [2]string{id, lang}
	if b.seats[k]--; b.seats[k] <= 0 {
		delete(b.seats, k)
	}
}

func (b *boothSet) add(c *interp) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		b.conns = map[*interp]struct{}{}
	}
	b.conns[c] = struct{}{}
}

func (b *boothSet) remove(c *interp) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.conns, c)
}

// of is the connections of room id (all rooms when id is "").
func (b *boothSet) of(id string) []*interp {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*interp
	for c := range b.conns {
		if id == "" || c.roomID == id {
			out = append(out, c)
		}
	}
	return out
}

// boothRoomChanged closes the room's interpreters whose booth is gone or
// whose key was rotated (rm nil: the room was deleted).
func (s *Server) boothRoomChanged(id string, rm *room.Room) {
	for _, c := range s.booths.of(id) {
		switch {
		case rm == nil:
			c.close(wire.CloseRoomGone, wire.CodeRoomDeleted, "the room was deleted")
		case !rm.CheckBoothKey(c.lang, c.key):
			if l, ok := rm.Language(c.lang); !ok || !l.Booth {
				c.close(wire.CloseRoomGone, wire.CodeBoothRemoved, "the room has no booth for "+c.lang+" any more")
			} else {
				c.close(wire.CloseBadMessage, wire.CodeKeyRotated, "the booth's key was changed; reconnect with the new key")
			}
		}
	}
}

// boothInfo answers a plain GET of the booth with a valid key: what the
// booth page shows beside the audio.
type boothInfo struct {
	Room     string               `json:"room"`
	Name     string               `json:"name"`
	Lang     string               `json:"lang"`
	Source   string               `json:"source_language"`
	Key      string               `json:"key"` // "valid"
	Glossary []room.GlossaryEntry `json:"glossary"`
	Notes    string               `json:"notes,omitempty"`
	// Languages are the channels a relay may hear (?hear=).
	Languages []string `json:"languages"`
}

func (s *Server) handleBooth(w http.ResponseWriter, r *http.Request) {
	key, rm, log, ok := s.admit(w, r, "booth")
	if !ok {
		return
	}
	pl, err := room.ParseLang(chi.URLParam(r, "lang"))
	l, ok := rm.Language(pl.Code)
	hasBooth := err == nil && ok && l.Booth
	if !hasBooth && rm.HoldsBoothKey(key) {
		// Told only to an interpreter of the room: a guesser learns
		// nothing of which languages have booths.
		httperr.NotFound(w, fmt.Sprintf("room %q has no booth for %.40q", rm.ID, chi.URLParam(r, "lang")))
		return
	}
	if !hasBooth || !rm.CheckBoothKey(l.Code, key) {
		metrics.Errors.WithLabelValues(roleName, "auth").Inc()
		log.Warn("interpreter refused: wrong booth key", "lang", pl.Code, "remote", r.RemoteAddr)
		httperr.Unauthorized(w, "wrong booth key for this booth")
		return
	}
	lang := l.Code
	q := r.URL.Query()
	hear := wire.Floor
	if h := q.Get("hear"); h != "" && h != wire.Floor {
		ph, err := room.ParseLang(h)
		if err != nil || !rm.Serves(ph.Code) || ph.Code == lang {
			httperr.Write(w, http.StatusBadRequest, wire.CodeBadHear,
				fmt.Sprintf("hear=%.40q: a booth hears the floor or another channel of the room", h))
			return
		}
		hear = ph.Code
	}
	codec := q.Get("codec")
	switch codec {
	case "":
		codec = codecPCM
	case codecPCM, codecOpus:
	default:
		httperr.BadRequest(w, "codec must be pcm or opus")
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		info := boothInfo{Room: rm.ID, Name: rm.Name, Lang: lang, Source: rm.SourceLanguage, Key: "valid",
			Glossary: rm.Glossary, Notes: rm.Notes, Languages: []string{rm.SourceLanguage}}
		for _, x := range rm.Languages {
			info.Languages = append(info.Languages, x.Code)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(info)
		return
	}
	if !s.booths.sit(rm.ID, lang) {
		httperr.Write(w, http.StatusTooManyRequests, "booth_full",
			fmt.Sprintf("the booth has %d interpreters connected, its maximum; one must leave first", MaxInterpreters))
		return
	}
	defer s.booths.stand(rm.ID, lang)
	conn, ok := s.upgrade(w, r)
	if !ok {
		return
	}
	defer s.leave()
	c := newInterp(s, conn, rm, lang, hear, key, log.With("lang", lang))
	c.codec = codec
	s.booths.add(c)
	defer s.booths.remove(c)
	if s.base.Err() != nil {
		c.close(wire.CloseShutdown, wire.CodeShuttingDown, "the server is shutting down; reconnect in a moment")
	}
	c.serve()
}
