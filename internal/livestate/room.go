package livestate

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/room"
)

// RoomState is what the bucket says of one room: whether its speaker is
// connected, its channels' translator states and its listeners per
// language summed over the fan-out nodes. It follows a Watch of RoomKeys
// (or of some of them) through Apply, or is read once with ReadRoom. It is
// not safe for concurrent use.
type RoomState struct {
	room string
	// Speaker is the room's speaker entry; nil while none is connected.
	Speaker *Speaker
	// Channels are the translator states reported, by language.
	Channels  map[string]Channel
	listeners map[string]map[string]int // language → fan-out node → listeners
}

// NewRoomState is the state of room id before anything is known.
func NewRoomState(id string) *RoomState {
	return &RoomState{room: id, Channels: map[string]Channel{}, listeners: map[string]map[string]int{}}
}

// ReadRoom reads the room's entries once.
func ReadRoom(ctx context.Context, kv jetstream.KeyValue, id string) (*RoomState, error) {
	entries, err := read(ctx, kv, RoomKeys(id))
	if err != nil {
		return nil, err
	}
	r := NewRoomState(id)
	r.Apply(Update{Reset: true, Entries: entries})
	return r, nil
}

// Apply takes an update of a watch of the room's keys. Entries of other
// rooms or kinds are ignored.
func (r *RoomState) Apply(u Update) {
	if u.Reset {
		r.Speaker = nil
		clear(r.Channels)
		clear(r.listeners)
	}
	for _, e := range u.Entries {
		k, ok := ParseKey(e.Key)
		if !ok || k.Room != r.room {
			continue
		}
		switch k.Kind {
		case KindSpeaker:
			r.Speaker = nil
			if e.Present {
				// Connected even if the entry is unreadable: someone wrote it.
				sp, _ := Decode[Speaker](e.Value)
				r.Speaker = &sp
			}
		case KindChannel:
			if ch, ok := Decode[Channel](e.Value); ok {
				r.Channels[k.Lang] = ch
			} else {
				delete(r.Channels, k.Lang)
			}
		case KindListeners:
			r.setListeners(k.Lang, k.Node, e)
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
	Speaker *Speaker
	// Floor is the source language: its listeners hear the speaker.
	Floor LanguageStatus
	// Languages are the room's languages, in the room's order.
	Languages []LanguageStatus
}

// Status is the status of rm, the room this state is about.
func (r *RoomState) Status(rm *room.Room) Status {
	st := Status{
		Speaker:   r.Speaker,
		Floor:     LanguageStatus{Code: rm.SourceLanguage, Listeners: r.Listeners(rm.SourceLanguage)},
		Languages: make([]LanguageStatus, 0, len(rm.Languages)),
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
		if r.Speaker == nil && len(r.Channels) == 0 && len(r.listeners) == 0 {
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
