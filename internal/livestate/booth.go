package livestate

import (
	"time"
)

// Interpreter is the entry at InterpreterKey(room, lang, conn): one
// interpreter connected to the booth of channel lang, written by the
// ingest node that serves the connection. Who is on air is whoever took
// the air last (OnAir, the latest TookAt): a take is one write, and every
// connection of the booth, on whatever node, reads the same answer.
type Interpreter struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
	Name  string    `json:"name,omitempty"`
	// OnAir is set by take and cleared by hand_over; TookAt is when.
	OnAir  bool      `json:"on_air"`
	TookAt time.Time `json:"took_at,omitzero"`
	// Muted: on air, but coughing (nothing published).
	Muted bool `json:"muted,omitempty"`
	// Hear is what the interpreter hears: "floor", or the channel relayed.
	Hear string `json:"hear,omitempty"`
}

// InterpreterKey is the key of one interpreter connection of a booth.
func InterpreterKey(room, lang, conn string) string {
	return Key{Kind: KindInterpreter, Room: room, Lang: lang, Conn: conn}.String()
}

// BoothKeys matches the entries of every interpreter of one booth (lang
// may be "*" for every booth of the room).
func BoothKeys(room, lang string) string { return InterpreterKey(room, lang, anyToken) }

// BoothInterpreter is one interpreter of a booth, with its connection id.
type BoothInterpreter struct {
	Conn string
	Interpreter
}

// OnAir is the interpreter on air among a booth's entries, if any: the
// latest to take the air that has not handed it over.
func OnAir(entries map[string]Interpreter) (conn string, ok bool) {
	var best Interpreter
	for c, e := range entries {
		if !e.OnAir {
			continue
		}
		if !ok || e.TookAt.After(best.TookAt) || (e.TookAt.Equal(best.TookAt) && c > conn) {
			conn, best, ok = c, e, true
		}
	}
	return conn, ok
}

// Booth is the interpreters of the booth of lang, the longest connected
// first, with only the one on air marked OnAir.
func (r *RoomState) Booth(lang string) []BoothInterpreter {
	entries := r.Booths[lang]
	air, _ := OnAir(entries)
	out := make([]BoothInterpreter, 0, len(entries))
	for c, e := range entries {
		e.OnAir = c == air
		out = append(out, BoothInterpreter{Conn: c, Interpreter: e})
	}
	longestFirst(out, func(in BoothInterpreter) (time.Time, string) { return in.Since, in.Conn })
	return out
}

func (r *RoomState) setInterpreter(k Key, e Entry) {
	byConn := r.Booths[k.Lang]
	in, ok := Decode[Interpreter](e.Value)
	if !e.Present || !ok {
		delete(byConn, k.Conn)
		if len(byConn) == 0 {
			delete(r.Booths, k.Lang)
		}
		return
	}
	if byConn == nil {
		byConn = map[string]Interpreter{}
		r.Booths[k.Lang] = byConn
	}
	byConn[k.Conn] = in
}
