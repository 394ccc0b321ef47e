package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/subject"
)

// Status is the body of GET /api/v1/rooms/{id}/status: the room's live
// state as the other roles report it in the State bucket.
type Status struct {
	Room      string           `json:"room"`
	Speaker   SpeakerStatus    `json:"speaker"`
	Floor     FloorStatus      `json:"floor"`
	Languages []LanguageStatus `json:"languages"`
}

// SpeakerStatus says whether the room's speaker is connected.
type SpeakerStatus struct {
	Connected  bool       `json:"connected"`
	Since      *time.Time `json:"since,omitempty"`
	Node       string     `json:"node,omitempty"`
	SampleRate int        `json:"sample_rate,omitempty"`
}

// FloorStatus counts the listeners of the untranslated source language.
type FloorStatus struct {
	Code      string `json:"code"`
	Listeners int    `json:"listeners"`
}

// LanguageStatus is one channel: its listeners over all fan-out nodes and
// its translator's state (idle when no translator reports it).
type LanguageStatus struct {
	Code           string  `json:"code"`
	Listeners      int     `json:"listeners"`
	State          string  `json:"state"`
	Error          string  `json:"error"`
	Kind           string  `json:"kind,omitempty"`
	Engine         string  `json:"engine,omitempty"`
	Node           string  `json:"node,omitempty"`
	SessionSeconds float64 `json:"session_seconds"`
}

func (s *Server) roomStatus(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.loadRoom(w, r)
	if !ok {
		return
	}
	ctx, cancel := kvContext(r)
	defer cancel()
	st := Status{Room: rm.ID, Floor: FloorStatus{Code: rm.SourceLanguage}, Languages: []LanguageStatus{}}

	if e, err := s.state.Get(ctx, subject.SpeakerKey(rm.ID)); err == nil {
		var sp subject.SpeakerState
		if err := json.Unmarshal(e.Value(), &sp); err != nil {
			s.log.Warn("unreadable speaker state", "room", rm.ID, "err", err)
		}
		st.Speaker = SpeakerStatus{Connected: true, Node: sp.Node, SampleRate: sp.SampleRate}
		if !sp.Since.IsZero() {
			st.Speaker.Since = &sp.Since
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.log.Error("room status: speaker", "room", rm.ID, "err", err)
		httperr.Internal(w)
		return
	}

	listeners, err := s.listenerCounts(r, rm.ID)
	if err != nil {
		s.log.Error("room status: listeners", "room", rm.ID, "err", err)
		httperr.Internal(w)
		return
	}
	st.Floor.Listeners = listeners[rm.SourceLanguage]

	channels, err := s.stateEntries(ctx, subject.ChannelKey(rm.ID, "*"))
	if err != nil {
		s.log.Error("room status: channels", "room", rm.ID, "err", err)
		httperr.Internal(w)
		return
	}
	for _, l := range rm.Languages {
		ls := LanguageStatus{Code: l.Code, Listeners: listeners[l.Code], State: subject.StateIdle}
		if v, ok := channels[subject.ChannelKey(rm.ID, l.Code)]; ok {
			var cs subject.ChannelState
			if err := json.Unmarshal(v, &cs); err != nil {
				s.log.Warn("unreadable channel state", "room", rm.ID, "lang", l.Code, "err", err)
			} else {
				if cs.State != "" {
					ls.State = cs.State
				}
				ls.Error, ls.Kind, ls.Engine, ls.Node = cs.Error, cs.Kind, cs.Engine, cs.Node
				ls.SessionSeconds = cs.SessionSeconds
			}
		}
		st.Languages = append(st.Languages, ls)
	}
	writeJSON(w, http.StatusOK, st)
}

// listenerCounts sums listeners.<room>.<lang>.<node> over nodes, per lang.
func (s *Server) listenerCounts(r *http.Request, roomID string) (map[string]int, error) {
	ctx, cancel := kvContext(r)
	defer cancel()
	prefix := subject.ListenersPrefix(roomID)
	entries, err := s.stateEntries(ctx, prefix+"*.*")
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for key, v := range entries {
		lang, _, ok := strings.Cut(strings.TrimPrefix(key, prefix), ".")
		if !ok {
			continue
		}
		var c subject.ListenerCount
		if err := json.Unmarshal(v, &c); err != nil {
			s.log.Warn("unreadable listener count", "key", key, "err", err)
			continue
		}
		if c.Count > 0 {
			counts[lang] += c.Count
		}
	}
	return counts, nil
}
