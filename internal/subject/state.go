package subject

import "time"

// SpeakerState is BucketState[SpeakerKey(room)]: present while the room's
// speaker is connected to some ingest node.
type SpeakerState struct {
	Node       string    `json:"node"`
	Since      time.Time `json:"since"`
	SampleRate int       `json:"sample_rate"`
}

// Translator states of a channel, as shown by the status API.
const (
	StateIdle     = "idle"
	StateStarting = "starting"
	StateActive   = "active"
	StateError    = "error"
)

// ChannelState is BucketState[ChannelKey(room, lang)], written by the
// translator node that owns the channel.
type ChannelState struct {
	State  string    `json:"state"`
	Error  string    `json:"error,omitempty"`
	Engine string    `json:"engine,omitempty"`
	Kind   string    `json:"kind,omitempty"` // e.g. "translate" or "interpret"
	Node   string    `json:"node,omitempty"`
	Since  time.Time `json:"since"`
	// SessionSeconds is the session time this channel has used, for cost.
	SessionSeconds float64 `json:"session_seconds"`
}

// ListenerCount is BucketState[ListenersKey(room, lang, node)]: listeners of
// one channel on one fan-out node.
type ListenerCount struct {
	Count int `json:"count"`
}

// EngineInfo is BucketState[EngineKey(node)]: what a translator node can serve.
type EngineInfo struct {
	Engine string `json:"engine"`
	// Sources are the source languages it understands; empty means any.
	Sources []string `json:"sources,omitempty"`
	// Targets are the target languages it can interpret into.
	Targets []string `json:"targets"`
}
