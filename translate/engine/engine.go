// Package engine is what a translation engine is to babelcast: an Engine
// opens Sessions, each interpreting one room into one language and handing
// what it says to a Sink. The openai engine (translate/openai) and the
// offline engine (translate/local) implement it; the translate worker runs
// them without knowing which one it has.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/babelcast/babelcast/internal/room"
)

// Channel is what a session interprets: one room into one target language.
type Channel struct {
	Room     string
	RoomName string
	Source   string // the language it mostly hears, e.g. "en"
	// Sources are every language it may hear (Source among them): a room
	// may have mics in several languages, and a channel hears those that
	// are not its own. Empty means Source alone.
	Sources  []string
	Target   string // target language code, e.g. "es"
	Voice    string // may be empty: the engine chooses
	Mode     string // room.ModeAuto, ModeTranslate or ModeInterpret
	Glossary []room.GlossaryEntry
	Notes    string
}

// Sink receives a session's output. Its methods are called from the
// session's own goroutine(s), one at a time, and must not block for long.
type Sink interface {
	// Audio is translated speech: PCM16LE mono 24 kHz, an even number of
	// bytes. captured is when the speech it translates was captured, or zero
	// when unknown.
	Audio(pcm []byte, captured time.Time)
	// Caption is a line of translation in the target language. text is the
	// whole segment so far; final marks its last update. segment numbers
	// lines within the session, increasing.
	Caption(segment uint64, text string, final bool)
	// SourceCaption is what the speaker said, in the source language, with
	// the same conventions as Caption.
	SourceCaption(segment uint64, text string, final bool)
}

// Session is one live interpreter for a Channel.
type Session interface {
	// Append gives the session speaker audio: PCM16LE mono 24 kHz, captured
	// at the given time. It must not block on the network; a session that
	// cannot keep up drops the oldest audio and says so in its log.
	Append(pcm []byte, captured time.Time) error
	// Close flushes what is pending (the translation of audio already
	// appended is still delivered to the Sink), then ends the session.
	// It returns when the session has ended or ctx is done.
	Close(ctx context.Context) error
	// Done is closed when the session ends by itself (error, expiry, lost
	// connection); Err then says why.
	Done() <-chan struct{}
	Err() error
	// Kind says which kind of session this is, e.g. "translate" or
	// "interpret" for the openai engine, "local" for the offline one.
	Kind() string
}

// Engine opens sessions.
type Engine interface {
	// Name is the engine's name as given to --engine.
	Name() string
	// Capabilities lists the languages the engine can serve.
	Capabilities() Capabilities
	// Open starts a session for ch that delivers to sink. It returns once
	// the session is ready to take audio.
	Open(ctx context.Context, ch Channel, sink Sink) (Session, error)
}

// Capabilities are the languages an engine serves.
type Capabilities struct {
	// Sources are the source languages it understands; nil means any.
	Sources []string
	// Targets are the target languages; nil means any known language.
	Targets []string
}

// Error is an engine failure with what the worker should do about it.
type Error struct {
	// Code is machine-readable: "invalid_api_key", "insufficient_quota",
	// "model_not_found", "rate_limited", "server_error", "session_expired",
	// "connection_lost", "unsupported_language", ...
	Code string
	// Message is readable by an organizer; it never holds secrets.
	Message string
	// Permanent errors (bad key, no quota, unknown model, unsupported
	// language) put the channel in state error until its configuration
	// changes; others are retried with backoff.
	Permanent bool
	// RetryAfter, when set, is how long the server asked us to wait.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// IsPermanent reports whether err is an *Error marked Permanent.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}
