package web

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/room"
)

// liveEngine is one translator node's livestate.Engine, with its language
// codes canonicalized.
type liveEngine struct {
	Node    string
	Engine  string
	Sources []string // nil: any source
	Targets []string // nil: any target
}

// liveEngines reads what the translator nodes registered in the state
// bucket, by node.
func (s *Server) liveEngines(ctx context.Context) ([]liveEngine, error) {
	infos, err := livestate.ReadEngines(ctx, s.state)
	if err != nil {
		return nil, err
	}
	engines := make([]liveEngine, 0, len(infos))
	for node, info := range infos {
		engines = append(engines, liveEngine{
			Node:    node,
			Engine:  info.Engine,
			Sources: s.canonical(node, info.Sources),
			Targets: s.canonical(node, info.Targets),
		})
	}
	sort.Slice(engines, func(i, j int) bool { return engines[i].Node < engines[j].Node })
	return engines, nil
}

// canonical canonicalizes codes, dropping those we cannot read; nil stays
// nil ("any").
func (s *Server) canonical(node string, codes []string) []string {
	if len(codes) == 0 {
		return nil
	}
	out := make([]string, 0, len(codes))
	for _, c := range codes {
		l, err := room.ParseLang(c)
		if err != nil {
			s.log.Warn("engine entry names an unknown language", "node", node, "lang", c)
			continue
		}
		if !slices.Contains(out, l.Code) {
			out = append(out, l.Code)
		}
	}
	return out
}

// serves reports whether e can interpret src into every one of targets.
func (e liveEngine) serves(src string, targets []string) bool {
	if !room.Covers(e.Sources, src) {
		return false
	}
	for _, t := range targets {
		if !room.Covers(e.Targets, t) {
			return false
		}
	}
	return true
}

// engineJSON is one engine of GET /api/v1/engines.
type engineJSON struct {
	Node      string      `json:"node"`
	Engine    string      `json:"engine"`
	Sources   []room.Lang `json:"sources"`
	AnySource bool        `json:"any_source,omitempty"`
	Targets   []room.Lang `json:"targets"`
	AnyTarget bool        `json:"any_target,omitempty"`
}

// enginesJSON is the body of GET /api/v1/engines: each live engine, and the
// union of what they serve (any_* true when some engine takes any language).
type enginesJSON struct {
	Engines   []engineJSON `json:"engines"`
	Sources   []room.Lang  `json:"sources"`
	AnySource bool         `json:"any_source,omitempty"`
	Targets   []room.Lang  `json:"targets"`
	AnyTarget bool         `json:"any_target,omitempty"`
}

func langs(codes []string) []room.Lang {
	out := make([]room.Lang, 0, len(codes))
	for _, c := range codes {
		if l, err := room.ParseLang(c); err == nil {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].English < out[j].English })
	return out
}

// union merges the code lists of every engine; any is true if one of them
// is nil.
func union(engines []liveEngine, pick func(liveEngine) []string) (codes []string, anyLang bool) {
	for _, e := range engines {
		l := pick(e)
		if l == nil {
			anyLang = true
			continue
		}
		for _, c := range l {
			if !slices.Contains(codes, c) {
				codes = append(codes, c)
			}
		}
	}
	return codes, anyLang
}

func sources(e liveEngine) []string { return e.Sources }
func targets(e liveEngine) []string { return e.Targets }

func (s *Server) listEngines(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := kvContext(r)
	defer cancel()
	engines, err := s.liveEngines(ctx)
	if err != nil {
		s.storeFailed(w, "list engines", err)
		return
	}
	body := enginesJSON{Engines: []engineJSON{}}
	for _, e := range engines {
		body.Engines = append(body.Engines, engineJSON{
			Node: e.Node, Engine: e.Engine,
			Sources: langs(e.Sources), AnySource: e.Sources == nil,
			Targets: langs(e.Targets), AnyTarget: e.Targets == nil,
		})
	}
	src, anySrc := union(engines, sources)
	tgt, anyTgt := union(engines, targets)
	body.Sources, body.AnySource = langs(src), anySrc
	body.Targets, body.AnyTarget = langs(tgt), anyTgt
	writeJSON(w, http.StatusOK, body)
}

// checkLanguages makes sure some live engine can interpret rm's source into
// all its targets. It returns a message listing what the engines serve when
// none can, "" when the room is fine. With no engine registered at all
// (translators not started yet) it accepts the room and logs a warning.
func (s *Server) checkLanguages(ctx context.Context, rm *room.Room) (string, error) {
	if len(rm.Languages) == 0 {
		return "", nil // floor only: nothing to interpret
	}
	engines, err := s.liveEngines(ctx)
	if err != nil {
		return "", err
	}
	if len(engines) == 0 {
		s.log.Warn("no translator engine is registered; accepting the room's languages unchecked", "room", rm.ID)
		return "", nil
	}
	tgts := make([]string, len(rm.Languages))
	for i, l := range rm.Languages {
		tgts[i] = l.Code
	}
	for _, e := range engines {
		if e.serves(rm.SourceLanguage, tgts) {
			return "", nil
		}
	}
	src, anySrc := union(engines, sources)
	tgt, anyTgt := union(engines, targets)
	var missing []string
	if !anySrc && !room.Covers(src, rm.SourceLanguage) {
		missing = append(missing, rm.SourceLanguage+" (source)")
	}
	for _, t := range tgts {
		if !anyTgt && !room.Covers(tgt, t) {
			missing = append(missing, t)
		}
	}
	var msg string
	if len(missing) > 0 {
		msg = "the live translators cannot serve " + strings.Join(missing, ", ")
	} else {
		msg = "no single live translator serves this source with all these languages"
	}
	return fmt.Sprintf("%s; they can serve sources: %s; targets: %s",
		msg, listOrAny(src, anySrc), listOrAny(tgt, anyTgt)), nil
}

func listOrAny(codes []string, anyLang bool) string {
	if anyLang {
		return "any language"
	}
	if len(codes) == 0 {
		return "none"
	}
	c := slices.Clone(codes)
	slices.Sort(c)
	return strings.Join(c, ", ")
}
