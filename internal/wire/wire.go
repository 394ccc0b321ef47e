// Package wire is babelcast's WebSocket protocols as Go types: the
// speaker's (GET /api/v1/rooms/{id}/speak, served by ingest) and the
// listener's (GET /api/v1/rooms/{id}/listen, served by fanout). It holds
// the text messages both ways, the close codes with what they mean, and the
// sample rate of the audio. The server roles send these types, the Go
// clients (internal/client) read them, and the pages' JavaScript mirrors
// the constants in web/static/js/protocol.js (a test in web keeps the two
// equal).
//
// Binary messages carry audio: PCM 16-bit little-endian mono, at
// SampleRate towards listeners, and at the rate the speaker's start message
// names (SampleRate when it names none) from speakers.
package wire

import (
	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/audio"
)

// SampleRate is the rate of the listener's audio: the channel's audio as it
// travels inside babelcast, passed on untouched.
const SampleRate = audio.Rate

// Message types: the "type" field of every text message.
const (
	// Speaker to server.
	TypeStart    = "start"
	TypeLanguage = "language"
	// Server to speaker.
	TypeReady  = "ready"
	TypeLevel  = "level"
	TypeStatus = "status"
	TypeError  = "error"
	// Server to listener.
	TypeHello   = "hello"
	TypeCaption = "caption"
	TypeState   = "state"
	TypeDelay   = "delay"
	TypeEarlier = "earlier"
)

// Close codes. The standard ones (RFC 6455) are what the server uses them
// for; the 4xxx ones are babelcast's own.
const (
	// CloseNormal: the session is over, nothing went wrong.
	CloseNormal = websocket.CloseNormalClosure // 1000
	// CloseShutdown: the server is shutting down; reconnect in a moment.
	CloseShutdown = websocket.CloseGoingAway // 1001
	// CloseBadAudio: a speaker's binary message was not PCM16 (odd length).
	CloseBadAudio = websocket.CloseInvalidFramePayloadData // 1007
	// CloseBadMessage: a speaker's text message was refused (not JSON, an
	// unknown type, a start after audio, a bad sample rate), or its key was
	// changed by the organizers.
	CloseBadMessage = websocket.ClosePolicyViolation // 1008
	// CloseTooLarge: a speaker's message was larger than the server takes.
	CloseTooLarge = websocket.CloseMessageTooBig // 1009
	// CloseReplaced: a newer connection of the room's speaker took over.
	CloseReplaced = 4001
	// ClosePasscodeChanged: the listener's passcode is not the room's:
	// before the hello, it was wrong from the start (a passcode is checked
	// once the WebSocket is open); after it, the room's passcode changed and
	// the listener came in without the new one.
	ClosePasscodeChanged = 4403
	// CloseRoomGone: the room was deleted, or (listeners) their language
	// was removed from it.
	CloseRoomGone = 4404
	// CloseTooSlow: the listener fell behind the live stream for seconds.
	CloseTooSlow = 4408
)

// closeMeanings say what each close code means, to a person.
var closeMeanings = map[int]string{
	CloseShutdown:        "server shutting down",
	CloseBadAudio:        "server rejected the audio",
	CloseBadMessage:      "server rejected a message",
	CloseTooLarge:        "message too large for the server",
	CloseReplaced:        "replaced by a newer speaker connection",
	ClosePasscodeChanged: "wrong passcode, or the room's passcode changed",
	CloseRoomGone:        "room deleted, or its language removed",
	CloseTooSlow:         "too slow: fell behind the live stream",
}

// CloseMeaning says in a few words what a close code of the server means,
// or "" for one it does not use.
func CloseMeaning(code int) string { return closeMeanings[code] }

// Codes of the speaker's error message; the same word is the close frame's
// reason.
const (
	CodeBadMessage    = "bad_message"
	CodeBadSampleRate = "bad_sample_rate"
	CodeBadAudio      = "bad_audio"
	CodeFrameTooLarge = "frame_too_large"
	CodeReplaced      = "replaced"
	CodeRoomDeleted   = "room_deleted"
	CodeBoothRemoved  = "booth_removed" // the booth's language has no booth any more, or left the room
	CodeKeyRotated    = "key_rotated"
	CodeShuttingDown  = "shutting_down"
	CodeBadMic        = "bad_mic"       // a mic id of the wrong shape, or a question's
	CodeBadLanguage   = "bad_language"  // a language the room has not
	CodeTooManyMics   = "too_many_mics" // the room has max_mics live
	CodeBadHear       = "bad_hear"      // a booth's ?hear= names no channel it may relay
)

// Envelope is the part every text message shares: enough to tell which
// message it is before decoding the rest.
type Envelope struct {
	Type string `json:"type"`
}

// Codecs of the audio on both WebSockets: the listener's ?codec= and the
// speaker's start message name one. CodecPCM (the default) is PCM16LE mono;
// CodecOpus is 20 ms mono Opus packets on a 48 kHz clock (OpusClockRate),
// each preceded by its length as a 2-byte big-endian integer, one or more
// to a binary message.
const (
	CodecPCM      = "pcm"
	CodecOpus     = "opus"
	OpusClockRate = 48000
)
