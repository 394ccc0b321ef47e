package openai

import "encoding/base64"

// The events of the Realtime API that this package sends (client events,
// one struct each) and reads (server events, one loose struct for all).

// eventHeader starts every client event. conn.send fills it in.
type eventHeader struct {
	Type    string `json:"type"`
	EventID string `json:"event_id"`
}

func (h *eventHeader) header() *eventHeader { return h }

// A clientEvent is an event this package sends: a struct that embeds
// eventHeader and names its type.
type clientEvent interface {
	header() *eventHeader
	eventType() string
}

// sessionUpdate configures a connection, once, before any audio: S is
// translationConfig on the translation endpoint, realtimeConfig on the
// realtime one.
type sessionUpdate[S any] struct {
	eventHeader
	Session S `json:"session"`
}

func (*sessionUpdate[S]) eventType() string { return "session.update" }

// translationConfig is the session of the dedicated translation model,
// which takes only these fields.
type translationConfig struct {
	Audio struct {
		Input struct {
			Transcription transcription `json:"transcription"`
		} `json:"input"`
		Output struct {
			Language string `json:"language"`
		} `json:"output"`
	} `json:"audio"`
}

// realtimeConfig is the session of the instructed model (GA protocol).
type realtimeConfig struct {
	Type             string   `json:"type"` // always "realtime"
	Instructions     string   `json:"instructions"`
	OutputModalities []string `json:"output_modalities"`
	Audio            struct {
		Input struct {
			Format        audioFormat   `json:"format"`
			Transcription transcription `json:"transcription"`
			TurnDetection turnDetection `json:"turn_detection"`
		} `json:"input"`
		Output struct {
			Format audioFormat `json:"format"`
			Voice  string      `json:"voice"`
		} `json:"output"`
	} `json:"audio"`
}

type transcription struct {
	Model string `json:"model"`
}

// audioFormat is the format of audio in and out: always PCM16 at 24 kHz.
type audioFormat struct {
	Type string `json:"type"` // "audio/pcm"
	Rate int    `json:"rate"`
}

var pcm24k = audioFormat{Type: "audio/pcm", Rate: sampleRate}

type turnDetection struct {
	Type              string `json:"type"`
	CreateResponse    bool   `json:"create_response"`
	InterruptResponse bool   `json:"interrupt_response"`
	SilenceDurationMS int    `json:"silence_duration_ms"`
}

// translationAppend adds audio to the translation model's input.
type translationAppend struct {
	eventHeader
	Audio string `json:"audio"` // base64 PCM16
}

func (*translationAppend) eventType() string { return "session.input_audio_buffer.append" }

// sessionClose asks the translation model to flush what it holds; it
// answers session.closed.
type sessionClose struct{ eventHeader }

func (*sessionClose) eventType() string { return "session.close" }

// bufferAppend adds audio to the instructed model's input buffer.
type bufferAppend struct {
	eventHeader
	Audio string `json:"audio"` // base64 PCM16
}

func (*bufferAppend) eventType() string { return "input_audio_buffer.append" }

// bufferCommit ends the input buffer's speech as a turn (a conversation
// item) where the server's VAD has not.
type bufferCommit struct{ eventHeader }

func (*bufferCommit) eventType() string { return "input_audio_buffer.commit" }

// responseCreate asks for one response.
type responseCreate struct {
	eventHeader
	Response responseParams `json:"response"`
}

func (*responseCreate) eventType() string { return "response.create" }

// responseParams are the response's own settings. Conversation "none" makes
// it out of band: over exactly Input, outside the default conversation.
type responseParams struct {
	Conversation     string          `json:"conversation"`
	OutputModalities []string        `json:"output_modalities"`
	Instructions     string          `json:"instructions"`
	Input            []itemReference `json:"input"`
}

type itemReference struct {
	Type string `json:"type"` // "item_reference"
	ID   string `json:"id"`
}

// itemCreate adds an item to the conversation: here always a user message
// of audio, a turn re-created on a fresh connection.
type itemCreate struct {
	eventHeader
	Item audioMessage `json:"item"`
}

func (*itemCreate) eventType() string { return "conversation.item.create" }

type audioMessage struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"` // "message"
	Role    string         `json:"role"` // "user"
	Content []inputContent `json:"content"`
}

type inputContent struct {
	Type  string `json:"type"`  // "input_audio"
	Audio string `json:"audio"` // base64 PCM16
}

// itemDelete drops an item from the conversation.
type itemDelete struct {
	eventHeader
	ItemID string `json:"item_id"`
}

func (*itemDelete) eventType() string { return "conversation.item.delete" }

// serverEvent is a server event, parsed loosely: every kind of event this
// package reads, with the fields it uses.
type serverEvent struct {
	Type         string          `json:"type"`
	Delta        string          `json:"delta"`
	ElapsedMS    *int64          `json:"elapsed_ms"`
	ItemID       string          `json:"item_id"`
	ResponseID   string          `json:"response_id"`
	Transcript   string          `json:"transcript"`
	AudioStartMS *int64          `json:"audio_start_ms"`
	AudioEndMS   *int64          `json:"audio_end_ms"`
	Session      *serverSession  `json:"session"`
	Response     *serverResponse `json:"response"`
	Error        *apiError       `json:"error"`
}

type serverSession struct {
	ExpiresAt int64 `json:"expires_at"`
}

type serverResponse struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	StatusDetails *struct {
		Error *apiError `json:"error"`
	} `json:"status_details"`
}

// apiError is the error object of an error event or an HTTP error body.
type apiError struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param"`
	EventID string `json:"event_id"`
}

// outOfBandResponse asks for a response over the one item, outside the
// default conversation, with its own instructions.
func outOfBandResponse(instructions, item string) *responseCreate {
	return &responseCreate{Response: responseParams{
		Conversation:     "none",
		OutputModalities: []string{"audio"},
		Instructions:     instructions,
		Input:            []itemReference{{Type: "item_reference", ID: item}},
	}}
}

// audioItem is a user message of pcm, with the given item id.
func audioItem(id string, pcm []byte) *itemCreate {
	return &itemCreate{Item: audioMessage{ID: id, Type: "message", Role: "user",
		Content: []inputContent{{Type: "input_audio", Audio: base64.StdEncoding.EncodeToString(pcm)}}}}
}
