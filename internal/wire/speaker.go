package wire

// The speaker's protocol. A speaker may send Start first; it sends binary
// audio; the server answers Ready once the audio format is fixed, then Level
// (a few times a second while audio arrives) and Status (every few
// seconds), and Error just before it closes the connection over a problem.

// Start is the speaker's optional first message: the rate of the audio it
// will send (SampleRate when absent).
type Start struct {
	Type       string `json:"type"` // TypeStart
	SampleRate *int   `json:"sample_rate,omitempty"`
}

// Ready tells the speaker the server takes its audio, at SampleRate.
type Ready struct {
	Type       string `json:"type"` // TypeReady
	Room       string `json:"room"`
	SampleRate int    `json:"sample_rate"`
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
