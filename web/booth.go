package web

import (
	"time"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/room"
)

// BoothStatus is a channel's booth in the room's status: who is in it and
// who is on air (the console shows it).
type BoothStatus struct {
	Interpreters []InterpreterStatus `json:"interpreters"`
	// OnAir is the name of the interpreter on air ("" when nobody is, or
	// they gave no name); Staffed whether anyone is connected.
	OnAir   bool `json:"on_air"`
	Staffed bool `json:"staffed"`
}

// InterpreterStatus is one interpreter connected to a booth.
type InterpreterStatus struct {
	Name  string    `json:"name,omitempty"`
	Since time.Time `json:"since"`
	OnAir bool      `json:"on_air"`
	Muted bool      `json:"muted,omitempty"`
	Hear  string    `json:"hear,omitempty"`
}

// boothStatus is the booth of rm's language lang, nil when it has none.
func boothStatus(rm *room.Room, live *livestate.RoomState, lang string) *BoothStatus {
	if l, ok := rm.Language(lang); !ok || !l.Booth {
		return nil
	}
	b := &BoothStatus{Interpreters: []InterpreterStatus{}}
	for _, in := range live.Booth(lang) {
		b.Interpreters = append(b.Interpreters, InterpreterStatus{Name: in.Name, Since: in.Since, OnAir: in.OnAir, Muted: in.Muted, Hear: in.Hear})
		b.OnAir = b.OnAir || in.OnAir
	}
	b.Staffed = len(b.Interpreters) > 0
	return b
}
