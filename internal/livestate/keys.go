// Package livestate owns the babelcast_state bucket: the live facts through
// which the roles see each other (a room's speaker, a channel's translator,
// the listeners of a channel on each fan-out node, what each translator node
// can serve). Every entry expires unless its writer refreshes it, so a
// process that dies takes its facts with it.
//
// The package names the keys and the records they hold, watches them with
// one retry policy (Watch, Retry), and sums a room's entries into the status
// that both the organizer API and the speaker see (RoomState). No other
// package builds or parses these keys.
package livestate

import (
	"context"
	"strings"
	"time"
)

// Bucket is the name of the live-state KV bucket.
const Bucket = "babelcast_state"

// TTL is how long an entry lives without being rewritten.
const TTL = 15 * time.Second

// Refresh is how often writers rewrite their entries, well within TTL.
const Refresh = 5 * time.Second

// Every calls f every d until ctx ends: a writer rewrites its entries
// every Refresh with it.
func Every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// Kind is what a key is about: its first token.
type Kind string

// The kinds of key in the bucket; layout says what follows each.
const (
	KindMic       Kind = "mic"       // mic.<room>.<mic>: Mic, by ingest
	KindChannel   Kind = "channel"   // channel.<room>.<lang>: Channel, by translate
	KindListeners Kind = "listeners" // listeners.<room>.<lang>.<node>: Listeners, by fanout
	KindEngine    Kind = "engine"    // engine.<node>: Engine, by translate
	// interpreter.<room>.<lang>.<conn>: Interpreter, by ingest
	KindInterpreter Kind = "interpreter"
)

// Key is a key of the bucket, parsed. Only the fields its Kind's layout
// names are set.
type Key struct {
	Kind Kind
	Room string
	Mic  string
	Lang string
	Node string
	Conn string
}

// field is one token of a key after its kind.
type field int

const (
	fRoom field = iota
	fMic
	fLang
	fNode
	fConn
)

// layout lists, for every kind, the tokens that follow it. A new kind of
// key is a line here, a builder below, and a field of Key if it names
// something new.
var layout = map[Kind][]field{
	KindMic:         {fRoom, fMic},
	KindChannel:     {fRoom, fLang},
	KindListeners:   {fRoom, fLang, fNode},
	KindEngine:      {fNode},
	KindInterpreter: {fRoom, fLang, fConn},
}

func (k *Key) field(f field) *string {
	switch f {
	case fRoom:
		return &k.Room
	case fMic:
		return &k.Mic
	case fLang:
		return &k.Lang
	case fConn:
		return &k.Conn
	default:
		return &k.Node
	}
}

// String is the key as stored in the bucket.
func (k Key) String() string {
	var b strings.Builder
	b.WriteString(string(k.Kind))
	for _, f := range layout[k.Kind] {
		b.WriteByte('.')
		b.WriteString(*k.field(f))
	}
	return b.String()
}

// ParseKey reads a key of the bucket; ok is false for a key of no known
// kind or layout.
func ParseKey(s string) (k Key, ok bool) {
	tokens := strings.Split(s, ".")
	k.Kind = Kind(tokens[0])
	fields, known := layout[k.Kind]
	if !known || len(tokens) != len(fields)+1 {
		return Key{}, false
	}
	for i, f := range fields {
		if tokens[i+1] == "" {
			return Key{}, false
		}
		*k.field(f) = tokens[i+1]
	}
	return k, true
}

// Keys of the bucket. Any argument may be "*" to make a watch pattern.

func MicKey(room, mic string) string { return Key{Kind: KindMic, Room: room, Mic: mic}.String() }

func ChannelKey(room, lang string) string {
	return Key{Kind: KindChannel, Room: room, Lang: lang}.String()
}

func ListenersKey(room, lang, node string) string {
	return Key{Kind: KindListeners, Room: room, Lang: lang, Node: node}.String()
}

func EngineKey(node string) string { return Key{Kind: KindEngine, Node: node}.String() }

// anyToken matches one token in a watch pattern.
const anyToken = "*"

// Mics matches the entry of every mic of every room.
func Mics() string { return MicKey(anyToken, anyToken) }

// RoomMics matches the entries of every mic of one room.
func RoomMics(room string) string { return MicKey(room, anyToken) }

// Engines matches the entry of every translator node.
func Engines() string { return EngineKey(anyToken) }

// RoomKeys match every entry about one room: its mics, its channels and
// their listeners.
func RoomKeys(room string) []string {
	return []string{RoomMics(room), ChannelKey(room, anyToken), ListenersKey(room, anyToken, anyToken), BoothKeys(room, anyToken)}
}
