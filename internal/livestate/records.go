package livestate

import (
	"encoding/json"
	"time"
)

// Mic is the entry at MicKey(room, mic): present while that mic of the
// room is connected to some ingest node. A room has a speaker while it has
// a mic.
type Mic struct {
	Node       string    `json:"node"`
	Since      time.Time `json:"since"`
	SampleRate int       `json:"sample_rate"`
	// Name is who speaks into it, as the mic said ("" when it did not).
	Name string `json:"name,omitempty"`
	// Language is what it speaks now: the room's source language or one
	// of its languages.
	Language string `json:"language"`
	// Codec is the audio the mic sends: "pcm" or "opus".
	Codec string `json:"codec,omitempty"`
	// Question is the audience question this mic asks, if it is one.
	Question string `json:"question,omitempty"`
	// LevelDB (dBFS) and Voice are how loud the mic was, and whether it
	// carried speech, since its entry was last written (about a second).
	LevelDB float64 `json:"level_db"`
	Voice   bool    `json:"voice"`
}

// Translator states of a channel, as shown by the status API and to
// listeners.
const (
	StateIdle     = "idle"
	StateStarting = "starting"
	StateActive   = "active"
	StateError    = "error"
)

// Channel is the entry at ChannelKey(room, lang), written by the
// translator node that owns the channel (or, with the state "error", by one
// waiting for a free session under the cluster's cap).
type Channel struct {
	State  string    `json:"state"`
	Error  string    `json:"error,omitempty"`
	Engine string    `json:"engine,omitempty"`
	Kind   string    `json:"kind,omitempty"` // e.g. "translate" or "interpret"
	Node   string    `json:"node,omitempty"`
	Since  time.Time `json:"since"`
	// SessionSeconds is the session time this channel has used, for cost.
	SessionSeconds float64 `json:"session_seconds"`
}

// Running reports whether the channel holds a session or is opening one:
// what counts against the cluster's session cap.
func (c Channel) Running() bool { return c.State == StateStarting || c.State == StateActive }

// Listeners is the entry at ListenersKey(room, lang, node): the listeners
// of one channel on one fan-out node.
type Listeners struct {
	Count int `json:"count"`
}

// Engine is the entry at EngineKey(node): what a translator node can serve.
type Engine struct {
	Engine string `json:"engine"`
	// Sources are the source languages it understands; absent means any.
	Sources []string `json:"sources,omitempty"`
	// Targets are the target languages it can interpret into; absent
	// means any.
	Targets []string `json:"targets,omitempty"`
}

// Encode is a record as stored in the bucket.
func Encode(record any) []byte {
	b, err := json.Marshal(record)
	if err != nil {
		panic("livestate: a record that does not encode: " + err.Error()) // records are plain structs
	}
	return b
}

// Decode reads a record from an entry's value; ok is false when the value
// is unreadable, or empty as a deleted or expired key's is.
func Decode[T any](value []byte) (v T, ok bool) {
	if json.Unmarshal(value, &v) != nil {
		var zero T
		return zero, false
	}
	return v, true
}
