package wire

// The speaker's protocol. A speaker may send Start first; it sends binary
// audio; the server answers Ready once the audio format is fixed, then Level
// (a few times a second while audio arrives) and Status (every few
// seconds), and Error just before it closes the connection over a problem.

// Start is the speaker's optional first message: the rate of the audio it
// will send (SampleRate when absent), and which mic of the room it is
// (DefaultMic when absent: a new connection with the id of a live mic
// takes it over, any other id joins the room's live mics), who speaks into
// it and in what language (the room's source language when absent).
type Start struct {
	Type       string  `json:"type"` // TypeStart
	SampleRate *int    `json:"sample_rate,omitempty"`
	Mic        *string `json:"mic,omitempty"`
	Name       string  `json:"name,omitempty"`
	Language   string  `json:"language,omitempty"`
	// Codec is the audio that follows: CodecPCM (the default) at
	// SampleRate, or CodecOpus (length-prefixed packets; SampleRate is
	// then ignored: Opus keeps its own 48 kHz clock).
	Codec string `json:"codec,omitempty"`
}

// DefaultMic is the mic of a speaker connection that names none.
const DefaultMic = "main"

// Language switches the language a mic speaks, from now on.
type Language struct {
	Type     string `json:"type"` // TypeLanguage
	Language string `json:"language"`
}

// Ready tells the speaker the server takes its audio, at SampleRate, as
// which mic, in which language.
type Ready struct {
	Type       string `json:"type"` // TypeReady
	Room       string `json:"room"`
	SampleRate int    `json:"sample_rate"`
	Mic        string `json:"mic"`
	Name       string `json:"name,omitempty"`
	Language   string `json:"language"`
}

// Level is the loudness of the audio the server received since the last
// Level, in dBFS (audio.SilenceDB for silence).
type Level struct {
	Type   string  `json:"type"` // TypeLevel
	RMSDB  float64 `json:"rms_db"`
	PeakDB float64 `json:"peak_db"`
}

// Status is what the speaker's room is doing: its channels and who
// listens.
type Status struct {
	Type           string       `json:"type"`    // TypeStatus
	Speaker        bool         `json:"speaker"` // always true: this connection is the speaker
	Languages      []LangStatus `json:"languages"`
	FloorListeners int          `json:"floor_listeners"`
	// Mics are the room's live mics, the longest connected first.
	Mics []MicStatus `json:"mics"`
}

// MicStatus is one live mic in a Status.
type MicStatus struct {
	Mic      string `json:"mic"`
	Name     string `json:"name,omitempty"`
	Language string `json:"language"`
}

// LangStatus is one channel in a Status.
type LangStatus struct {
	Code      string `json:"code"`
	State     string `json:"state"` // idle, starting, active or error
	Listeners int    `json:"listeners"`
	Error     string `json:"error"`
}

// Error says why the server is about to close the connection; Code is one
// of the Code… constants.
type Error struct {
	Type    string `json:"type"` // TypeError
	Code    string `json:"code"`
	Message string `json:"message"`
}
