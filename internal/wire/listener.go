package wire

// The listener's protocol. The server sends Hello first, then binary audio
// at SampleRate with Caption, State and Delay messages between; a listener
// sends nothing but control frames.

// Floor is the language of the floor itself, as a listener asks for it
// (lang=floor): the mix of every live mic, untranslated.
const Floor = "floor"

// HeaderPasscode carries a listener's passcode on plain HTTP requests (the
// earlier lines, a public transcript), so it stays out of URLs and access
// logs; ?passcode= is taken too, for players that cannot set headers.
const HeaderPasscode = "X-Babelcast-Passcode"

// Hello opens a listener connection: which channel this is.
type Hello struct {
	Type       string `json:"type"` // TypeHello
	Room       string `json:"room"`
	Lang       string `json:"lang"`
	SampleRate int    `json:"sample_rate"`
	// Codec is the binary messages' audio: CodecPCM at SampleRate, or
	// CodecOpus (SampleRate is then OpusClockRate), as ?codec= asked. The
	// server always says it.
	Codec string `json:"codec,omitempty"`
	// Floor is true for the floor itself (lang=floor: every mic,
	// untranslated) and for the room's source language, whose channel
	// carries the floor while it speaks that language.
	Floor bool `json:"floor"`
	// Passthrough is false when the listener asked to hear only
	// interpretations (?passthrough=false), never the original.
	Passthrough bool `json:"passthrough"`
}

// Caption is a caption line. Translators publish it on NATS exactly as
// listeners receive it. A line is sent as it grows with Final false (Text
// is the whole line so far, so a client replaces the line it shows) and
// once more with Final true when it is complete.
type Caption struct {
	Type  string `json:"type"` // TypeCaption
	Lang  string `json:"lang"`
	Text  string `json:"text"`
	Final bool   `json:"final"`
	// Segment identifies the line within its channel, so partial updates
	// replace the right line.
	Segment uint64 `json:"segment"`
	// Source is true for what was said in the original (what the channel
	// carries while the floor speaks its language).
	Source bool `json:"source,omitempty"`
	// Speaker and SourceLanguage say who spoke and in what language, when
	// known: on an interpretation, who and what it interprets.
	Speaker        string `json:"speaker,omitempty"`
	SourceLanguage string `json:"source_language,omitempty"`
}

// State is the channel's translator state (for the floor: active while the
// speaker is connected, else idle) and whether the room has a speaker;
// sent on connect and whenever either changes.
type State struct {
	Type    string `json:"type"`  // TypeState
	Lang    string `json:"lang"`  // the channel
	State   string `json:"state"` // idle, starting, active or error
	Message string `json:"message"`
	Speaker bool   `json:"speaker"`
	// Voice is whose interpretation the channel carries: "human" (an
	// interpreter of its booth on air) or "ai"; absent on the floor.
	Voice string `json:"voice,omitempty"`
}

// Earlier is what was said on the channel before the listener joined (its
// final caption lines, oldest first), sent once after Hello where the
// service keeps transcripts; More says that older lines exist (GET
// /api/v1/rooms/{id}/earlier?lang=…&before=… gives them, same shape).
type Earlier struct {
	Type     string        `json:"type"` // TypeEarlier
	Lang     string        `json:"lang"`
	Captions []EarlierLine `json:"captions"`
	More     bool          `json:"more"`
}

// EarlierLine is a final caption line kept in the transcript, with when it
// was said (RFC 3339).
type EarlierLine struct {
	Text           string `json:"text"`
	Speaker        string `json:"speaker,omitempty"`
	SourceLanguage string `json:"source_language,omitempty"`
	// Source is true for what was said in the original.
	Source bool   `json:"source,omitempty"`
	Start  string `json:"start"`
	End    string `json:"end"`
}

// Delay is the listener's lag: from the capture of the speech to the send
// of the audio that carries it (or its translation), in milliseconds.
type Delay struct {
	Type string `json:"type"` // TypeDelay
	MS   int64  `json:"ms"`
}
