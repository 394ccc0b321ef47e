package livestate

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/wire"
)

// RoomState is what the bucket says of one room: its connected mics, its
// channels' translator states and its listeners per language summed over
// the fan-out nodes. It follows a Watch of RoomKeys
// (or of some of them) through Apply, or is read once with ReadRoom. It is
// not safe for concurrent use.
type RoomState struct {
	room string
	// Mics are the room's connected mics, by mic id.
	Mics map[string]Mic
	// Channels are the translator states reported, by language.
	Channels  map[string]Channel
	listeners map[string]map[string]int // language → fan-out node → listeners
	// Booths are the interpreters connected to each booth: language →
	// connection → entry (see booth.go).
	Booths map[string]map[string]Interpreter
	// Written is, for ReadRoom, when the newest entry it read (the room's
	// or a translator node's engine entry) was written; zero if none.
	Written time.Time
}

// FrozenAfter is how long the bucket may go without any entry rewritten,
// although its writers rewrite theirs every Refresh, before what it says
// is taken as frozen: the cluster takes no writes (it lost the majority of
// its servers), and its reads show the past. A JetStream leader election
// is over well within it.
const FrozenAfter = 4 * Refresh

// Frozen reports whether the state read was last written longer than
// FrozenAfter before now.
func (r *RoomState) Frozen(now time.Time) bool {
	return !r.Written.IsZero() && now.Sub(r.Written) > FrozenAfter
}

// NewRoomState is the state of room id before anything is known.
func NewRoomState(id string) *RoomState {
	return &RoomState{room: id, Mics: map[string]Mic{}, Channels: map[string]Channel{}, listeners: map[string]map[string]int{},
		Booths: map[string]map[string]Interpreter{}}
}

// ReadRoom reads the room's entries once, and the engine entries that
// translator nodes rewrite every Refresh, to know how fresh it all is
// (Written, Frozen).
func ReadRoom(ctx context.Context, kv jetstream.KeyValue, id string) (*RoomState, error) {
	entries, err := read(ctx, kv, append(RoomKeys(id), Engines()))
	if err != nil {
		return nil, err
	}
	r := NewRoomState(id)
	r.Apply(Update{Reset: true, Entries: entries})
	for _, e := range entries {
		if e.Created.After(r.Written) {
			r.Written = e.Created
		}
	}
	return r, nil
}

// Apply takes an update of a watch of the room's keys. Entries of other
// rooms or kinds are ignored.
func (r *RoomState) Apply(u Update) {
	if u.Reset {
		clear(r.Mics)
		clear(r.Channels)
		clear(r.listeners)
		clear(r.Booths)
	}
	for _, e := range u.Entries {
		k, ok := ParseKey(e.Key)
		if !ok || k.Room != r.room {
			continue
		}
		switch k.Kind {
		case KindMic:
			delete(r.Mics, k.Mic)
			if e.Present {
				// Connected even if the entry is unreadable: someone wrote it.
				m, _ := Decode[Mic](e.Value)
				r.Mics[k.Mic] = m
			}
		case KindChannel:
			if ch, ok := Decode[Channel](e.Value); ok {
				r.Channels[k.Lang] = ch
			} else {
				delete(r.Channels, k.Lang)
			}
		case KindListeners:
			r.setListeners(k.Lang, k.Node, e)
		case KindInterpreter:
			r.setInterpreter(k, e)
		}
	}
}

func (r *RoomState) setListeners(lang, node string, e Entry) {
	l, ok := Decode[Listeners](e.Value)
	byNode := r.listeners[lang]
	if !ok || l.Count <= 0 {
		delete(byNode, node)
		if len(byNode) == 0 {
			delete(r.listeners, lang)
		}
		return
	}
	if byNode == nil {
		byNode = map[string]int{}
		r.listeners[lang] = byNode
	}
	byNode[node] = l.Count
}

// Speaking reports whether the room has a speaker: a connected mic.
func (r *RoomState) Speaking() bool { return len(r.Mics) > 0 }

// Speaks reports whether a connected mic speaks lang.
func (r *RoomState) Speaks(lang string) bool {
	for _, m := range r.Mics {
		if m.Language == lang {
			return true
		}
	}
	return false
}

// SpeaksOtherThan reports whether a connected mic speaks a language other
// than lang: speech a channel in lang must interpret.
func (r *RoomState) SpeaksOtherThan(lang string) bool {
	for _, m := range r.Mics {
		if m.Language != lang {
			return true
		}
	}
	return false
}

// MicStatus is one connected mic.
type MicStatus struct {
	ID string
	Mic
}

// MicList is the room's connected mics, the longest connected first.
func (r *RoomState) MicList() []MicStatus {
	out := make([]MicStatus, 0, len(r.Mics))
	for id, m := range r.Mics {
		out = append(out, MicStatus{ID: id, Mic: m})
	}
	longestFirst(out, func(m MicStatus) (time.Time, string) { return m.Since, m.ID })
	return out
}

// longestFirst sorts connections (mics, interpreters) the longest
// connected first, by since, then by id: every node lists them alike.
func longestFirst[T any](s []T, key func(T) (since time.Time, id string)) {
	slices.SortFunc(s, func(a, b T) int {
		as, aid := key(a)
		bs, bid := key(b)
		return cmp.Or(as.Compare(bs), strings.Compare(aid, bid))
	})
}

// Speaker is the mic that stands for "the speaker" where one is shown:
// mic "main" when connected, else the one connected longest (an audience
// question's only when it is the only mic); nil when the room has none.
func (r *RoomState) Speaker() *MicStatus {
	if m, ok := r.Mics[DefaultMic]; ok {
		return &MicStatus{ID: DefaultMic, Mic: m}
	}
	l := r.MicList()
	for i := range l {
		if l[i].Question == "" {
			return &l[i]
		}
	}
	if len(l) > 0 {
		return &l[0]
	}
	return nil
}

// DefaultMic is the id of a speaker connection that names no mic.
const DefaultMic = wire.DefaultMic

// Listeners is how many listen to lang, over every fan-out node.
func (r *RoomState) Listeners(lang string) int {
	n := 0
	for _, c := range r.listeners[lang] {
		n += c
	}
	return n
}

// LanguageStatus is one language of a room: its listeners and its
// translator's state, StateIdle when no translator reports one.
type LanguageStatus struct {
	Code      string
	Listeners int
	Channel
}

// Language is the status of one language of the room.
func (r *RoomState) Language(code string) LanguageStatus {
	ls := LanguageStatus{Code: code, Listeners: r.Listeners(code), Channel: r.Channels[code]}
	if ls.State == "" {
		ls.State = StateIdle
	}
	return ls
}

// Status is a room's status as the organizer API and the speaker see it.
type Status struct {
	// Speaker is the mic that stands for the speaker (see
	// RoomState.Speaker); nil while the room has none.
	Speaker *MicStatus
	// Mics are every connected mic, the longest connected first.
	Mics []MicStatus
	// Floor is the source language's channel: while the floor speaks it,
	// its listeners hear the speaker; else the interpretation into it.
	Floor LanguageStatus
	// MixListeners listen to the floor itself: every mic, untranslated.
	MixListeners int
	// Languages are the room's other languages, in the room's order.
	Languages []LanguageStatus
}

// FloorLang is the language code of the floor itself (the mix of every
// live mic, untranslated) wherever a channel is named: listener requests
// and presence keys.
const FloorLang = wire.Floor

// Status is the status of rm, the room this state is about.
func (r *RoomState) Status(rm *room.Room) Status {
	st := Status{
		Speaker:      r.Speaker(),
		Mics:         r.MicList(),
		Floor:        r.Language(rm.SourceLanguage),
		MixListeners: r.Listeners(FloorLang),
		Languages:    make([]LanguageStatus, 0, len(rm.Languages)),
	}
	for _, l := range rm.Languages {
		st.Languages = append(st.Languages, r.Language(l.Code))
	}
	return st
}

// RoomStates follows the entries of every room, from a Watch of the whole
// bucket. It is not safe for concurrent use.
type RoomStates struct {
	rooms map[string]*RoomState
}

// NewRoomStates knows nothing of any room yet.
func NewRoomStates() *RoomStates { return &RoomStates{rooms: map[string]*RoomState{}} }

// Apply takes an update of a watch of the bucket.
func (rs *RoomStates) Apply(u Update) {
	if u.Reset {
		clear(rs.rooms)
	}
	for _, e := range u.Entries {
		k, ok := ParseKey(e.Key)
		if !ok || k.Room == "" {
			continue
		}
		r := rs.rooms[k.Room]
		if r == nil {
			r = NewRoomState(k.Room)
			rs.rooms[k.Room] = r
		}
		r.Apply(Update{Entries: []Entry{e}})
		if len(r.Mics) == 0 && len(r.Channels) == 0 && len(r.listeners) == 0 {
			delete(rs.rooms, k.Room)
		}
	}
}

// Get is what is known of room id: an empty state when nothing is. The
// caller must not change it.
func (rs *RoomStates) Get(id string) *RoomState {
	if r := rs.rooms[id]; r != nil {
		return r
	}
	return &RoomState{room: id} // nil maps read as empty

}

// ReadEngines reads what every live translator node can serve, by node.
// Unreadable entries are left out.
func ReadEngines(ctx context.Context, kv jetstream.KeyValue) (map[string]Engine, error) {
	entries, err := read(ctx, kv, []string{Engines()})
	if err != nil {
		return nil, err
	}
	out := map[string]Engine{}
	for _, e := range entries {
		k, ok := ParseKey(e.Key)
		if info, readable := Decode[Engine](e.Value); ok && readable && k.Kind == KindEngine {
			out[k.Node] = info
		}
	}
	return out, nil
}
