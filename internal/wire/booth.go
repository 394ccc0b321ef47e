package wire

// The booth's protocol (GET /api/v1/rooms/{id}/booth/{lang}, served by
// ingest): an interpreter sends Start (as a speaker's: sample_rate, name)
// and binary audio like a speaker, and Take, HandOver and Mute; the server
// sends BoothReady first, binary audio of what the interpreter hears (the
// floor, or with ?hear= the channel relayed) at SampleRate, OnAir whenever
// who is on air changes (or someone joins or leaves the booth), Level and
// Caption lines of the floor as a crib.

// Booth message types.
const (
	// Interpreter to server.
	TypeTake     = "take"
	TypeHandOver = "hand_over"
	TypeMute     = "mute"
	// Server to interpreter.
	TypeOnAir = "on_air"
)

// Mute silences (Muted true) or restores the interpreter on air.
type Mute struct {
	Type  string `json:"type"` // TypeMute
	Muted bool   `json:"muted"`
}

// BoothReady opens a booth connection: which booth, what it hears.
type BoothReady struct {
	Type string `json:"type"` // TypeReady
	Room string `json:"room"`
	Lang string `json:"lang"`
	Hear string `json:"hear"` // Floor, or the language relayed
	// Codec of what it hears: "pcm" (SampleRate 24000) or "opus" (20 ms
	// packets, length-prefixed as a listener's; SampleRate 48000).
	Codec      string `json:"codec"`
	SampleRate int    `json:"sample_rate"`
	// Conn names this connection among the booth's Interpreters.
	Conn string `json:"conn"`
}

// OnAir says who is on air in the booth: OnAir is true when this
// connection is, Name is who is ("" when nobody), Muted whether they
// cough; Interpreters lists everyone connected to the booth.
type OnAir struct {
	Type         string        `json:"type"` // TypeOnAir
	OnAir        bool          `json:"on_air"`
	Name         string        `json:"name"`
	Muted        bool          `json:"muted"`
	Interpreters []Interpreter `json:"interpreters"`
}

// Interpreter is one connection of a booth in an OnAir.
type Interpreter struct {
	Conn  string `json:"conn"`
	Name  string `json:"name,omitempty"`
	OnAir bool   `json:"on_air"`
	Muted bool   `json:"muted,omitempty"`
	Hear  string `json:"hear,omitempty"`
}
