package web

import (
	"net/http"
	"time"

	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/livestate"
)

// Status is the body of GET /api/v1/rooms/{id}/status: the room's live
// state as the other roles report it in the State bucket.
type Status struct {
	Room    string        `json:"room"`
	Speaker SpeakerStatus `json:"speaker"`
	// Mics are every connected mic, the longest connected first.
	Mics      []MicStatus      `json:"mics"`
	Floor     FloorStatus      `json:"floor"`
	Languages []LanguageStatus `json:"languages"`
}

// SpeakerStatus says whether the room has a speaker (a connected mic), and
// of the mic that stands for it (mic "main", else the longest connected)
// since when, on which node, at which rate.
type SpeakerStatus struct {
	Connected  bool       `json:"connected"`
	Since      *time.Time `json:"since,omitempty"`
	Node       string     `json:"node,omitempty"`
	SampleRate int        `json:"sample_rate,omitempty"`
}

// MicStatus is one connected mic: who speaks into it, in which language,
// how loud it was over the last second or so, and whether it spoke.
type MicStatus struct {
	Mic        string    `json:"mic"`
	Name       string    `json:"name,omitempty"`
	Language   string    `json:"language"`
	Since      time.Time `json:"since"`
	Node       string    `json:"node"`
	SampleRate int       `json:"sample_rate"`
	LevelDB    float64   `json:"level_db"`
	Speaking   bool      `json:"speaking"`
	Question   string    `json:"question,omitempty"`
}

// FloorStatus is the source language's channel: its listeners (who hear
// the floor while it speaks the source language) and its translator, which
// interprets what is said in the room's other languages. MixListeners
// listen to the floor itself (lang=floor).
type FloorStatus struct {
	Code           string  `json:"code"`
	Listeners      int     `json:"listeners"`
	MixListeners   int     `json:"mix_listeners"`
	State          string  `json:"state"`
	Error          string  `json:"error"`
	Kind           string  `json:"kind,omitempty"`
	SessionSeconds float64 `json:"session_seconds"`
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
	// Booth is the channel's booth, where it has one: the interpreters
	// connected, the longest connected first (booth.go).
	Booth *BoothStatus `json:"booth,omitempty"`
}

func (s *Server) roomStatus(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.loadRoom(w, r)
	if !ok {
		return
	}
	ctx, cancel := kvContext(r)
	defer cancel()
	live, err := livestate.ReadRoom(ctx, s.state, rm.ID)
	if err != nil {
		s.storeFailed(w, "room status", err, "room", rm.ID)
		return
	}
	if live.Frozen(time.Now()) {
		// Only a replica that takes no writes answered: its entries are
		// the past, and would show a talk that is not happening.
		s.log.Warn("room status: the live state is frozen; the cluster takes no writes", "room", rm.ID, "written", live.Written)
		httperr.Unavailable(w, storeRetryAfter, "the cluster is not taking writes (most of its servers are down): the live state is out of date; try again shortly")
		return
	}
	ls := live.Status(rm)
	st := Status{
		Room: rm.ID,
		Mics: make([]MicStatus, 0, len(ls.Mics)),
		Floor: FloorStatus{Code: ls.Floor.Code, Listeners: ls.Floor.Listeners, MixListeners: ls.MixListeners,
			State: ls.Floor.State, Error: ls.Floor.Error, Kind: ls.Floor.Kind, SessionSeconds: ls.Floor.SessionSeconds},
		Languages: make([]LanguageStatus, 0, len(ls.Languages)),
	}
	for _, m := range ls.Mics {
		st.Mics = append(st.Mics, MicStatus{Mic: m.ID, Name: m.Name, Language: m.Language, Since: m.Since, Node: m.Node,
			SampleRate: m.SampleRate, LevelDB: m.LevelDB, Speaking: m.Voice, Question: m.Question})
	}
	if sp := ls.Speaker; sp != nil {
		st.Speaker = SpeakerStatus{Connected: true, Node: sp.Node, SampleRate: sp.SampleRate}
		if !sp.Since.IsZero() {
			st.Speaker.Since = &sp.Since
		}
	}
	for _, l := range ls.Languages {
		st.Languages = append(st.Languages, LanguageStatus{
			Code: l.Code, Listeners: l.Listeners, State: l.State, Error: l.Error,
			Kind: l.Kind, Engine: l.Engine, Node: l.Node, SessionSeconds: l.SessionSeconds,
			Booth: boothStatus(rm, live, l.Code),
		})
	}
	writeJSON(w, http.StatusOK, st)
}
