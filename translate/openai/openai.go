// Package openai is the engine.Engine backed by OpenAI's Realtime API.
//
// It has two kinds of session, chosen per channel: the dedicated translation
// model (gpt-realtime-translate on <realtime-url>/translations), which
// interprets continuously with no turns, and an instructed realtime model
// (gpt-realtime on <realtime-url>, GA protocol) that this package drives turn
// by turn as a simultaneous interpreter. Both hide the provider's 60-minute
// connection limit, dropped connections and rate limits behind one long-lived
// engine.Session.
//
// Where things are:
//   - openai.go: Options, Engine, which kind of session a channel gets.
//   - session.go: what both kinds share: the inbox of speaker audio, the one
//     goroutine that runs a session, Close and the end state.
//   - rotator.go: a session's connections: the current one, a fresh one
//     waiting to take over before the current one expires, the ones
//     finishing after a move, and the one that dropped; dialling with
//     backoff. One rotator serves both kinds through their connKind hooks.
//   - conn.go, events.go, errors.go: one WebSocket connection and its input
//     clock; the client and server events; errors as engine.Errors.
//   - translation.go: the translation kind.
//   - interpret.go (the server's events), interpret_input.go (speech into
//     the input buffer, long turns cut), turns.go (the turn queue and its
//     responses), judge.go (replies that are not translations) and
//     instructions.go: the instructed kind.
//   - captions.go, audio.go: caption lines from transcript deltas; PCM
//     helpers.
package openai

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/option"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/translate/engine"
)

// Kinds of session, as returned by Session.Kind.
const (
	KindTranslate = "translate" // the dedicated translation model
	KindInterpret = "interpret" // the instructed realtime model
)

// Defaults of Options.
const (
	DefaultRealtimeURL     = "wss://api.openai.com/v1/realtime"
	DefaultRealtimeModel   = "gpt-realtime"
	DefaultTranslateModel  = "gpt-realtime-translate"
	DefaultTranscribeModel = "gpt-4o-mini-transcribe"
	DefaultVoice           = "marin"
	DefaultMaxTurn         = 8 * time.Second
)

// translateTargets are the languages the dedicated translation model speaks
// (base language codes).
var translateTargets = map[string]bool{
	"es": true, "pt": true, "fr": true, "ja": true, "ru": true, "zh": true, "de": true,
	"ko": true, "hi": true, "id": true, "vi": true, "it": true, "en": true,
}

// Options configure the engine. Only APIKey is required.
type Options struct {
	APIKey          string
	RealtimeURL     string // default wss://api.openai.com/v1/realtime
	RealtimeModel   string // default gpt-realtime
	TranslateModel  string // default gpt-realtime-translate
	TranscribeModel string // default gpt-4o-mini-transcribe (source captions)
	// MaxTurn is the longest stretch of speech the instructed kind lets go
	// by before it cuts a turn itself (default 8s).
	MaxTurn time.Duration
	// Azure sends the key as an api-key header instead of a bearer token.
	// It is implied by a RealtimeURL host ending in .openai.azure.com.
	Azure  bool
	Log    *slog.Logger
	Dialer *websocket.Dialer

	// RotateBefore is how long before a connection expires a fresh one is
	// opened to move over to (default 3m).
	RotateBefore time.Duration
	// SwitchWait bounds the wait for a pause in the speech before moving to
	// the fresh connection anyway (default 10s).
	SwitchWait time.Duration
	// BackoffBase and BackoffMax shape reconnect backoff (defaults 500ms, 30s).
	BackoffBase, BackoffMax time.Duration
	// MaxRetries is how many connection attempts in a row may fail before
	// the session gives up with a retryable error (default 8).
	MaxRetries int
	// QueueAudio is how much speaker audio Append holds while the network
	// is slow or reconnecting; older audio is dropped (default 5s).
	QueueAudio time.Duration
	// TopUp is how long the input is topped up with silence after the
	// speaker's audio stops, so the model finishes the last words; after
	// that the model's clock waits, unbilled, for more speech (default 5s).
	TopUp time.Duration
}

// Engine opens OpenAI Realtime sessions. It is safe for concurrent use.
type Engine struct {
	opt   Options
	base  *url.URL
	azure bool
	log   *slog.Logger
}

// New checks the options and fills their defaults.
func New(opt Options) (*Engine, error) {
	if strings.TrimSpace(opt.APIKey) == "" {
		return nil, errors.New("openai: an API key is required")
	}
	if opt.RealtimeURL == "" {
		opt.RealtimeURL = DefaultRealtimeURL
	}
	u, err := url.Parse(opt.RealtimeURL)
	if err != nil {
		return nil, fmt.Errorf("openai: realtime URL: %v", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("openai: realtime URL %q: scheme must be wss, ws, https or http", opt.RealtimeURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("openai: realtime URL %q has no host", opt.RealtimeURL)
	}
	opt.RealtimeModel = cmp.Or(opt.RealtimeModel, DefaultRealtimeModel)
	opt.TranslateModel = cmp.Or(opt.TranslateModel, DefaultTranslateModel)
	opt.TranscribeModel = cmp.Or(opt.TranscribeModel, DefaultTranscribeModel)
	opt.MaxTurn = option.Default(opt.MaxTurn, DefaultMaxTurn)
	if opt.MaxTurn < 500*time.Millisecond {
		opt.MaxTurn = 500 * time.Millisecond
	}
	opt.Log = cmp.Or(opt.Log, slog.Default())
	if u.Scheme == "ws" && !loopback(u.Hostname()) {
		// Said once, at start: every session would send the key so.
		opt.Log.Warn("the realtime URL is ws:// to another machine: the API key travels in clear text; use wss://", "host", u.Hostname())
	}
	if opt.Dialer == nil {
		opt.Dialer = &websocket.Dialer{HandshakeTimeout: 15 * time.Second, Proxy: websocket.DefaultDialer.Proxy}
	}
	opt.RotateBefore = option.Default(opt.RotateBefore, 3*time.Minute)
	opt.SwitchWait = option.Default(opt.SwitchWait, 10*time.Second)
	opt.BackoffBase = option.Default(opt.BackoffBase, 500*time.Millisecond)
	opt.BackoffMax = option.Default(opt.BackoffMax, 30*time.Second)
	opt.MaxRetries = option.Default(opt.MaxRetries, 8)
	opt.TopUp = option.Default(opt.TopUp, 5*time.Second)
	opt.QueueAudio = option.Default(opt.QueueAudio, 5*time.Second)
	return &Engine{
		opt:   opt,
		base:  u,
		azure: opt.Azure || strings.HasSuffix(strings.ToLower(u.Hostname()), ".openai.azure.com"),
		log:   opt.Log,
	}, nil
}

// Name implements engine.Engine.
func (e *Engine) Name() string { return "openai" }

// Capabilities implements engine.Engine: any source, any known target
// (targets the translation model cannot speak go to the instructed model).
func (e *Engine) Capabilities() engine.Capabilities { return engine.Capabilities{} }

// KindFor says which kind of session Open would start for ch: the dedicated
// translation model where it can do what the channel asks, else the
// instructed realtime model. Mode translate on a language the translation
// model cannot speak is a permanent unsupported_language error.
func (e *Engine) KindFor(ch engine.Channel) (string, error) {
	if _, err := room.ParseLang(ch.Target); err != nil {
		return "", &engine.Error{Code: "unsupported_language", Message: err.Error(), Permanent: true}
	}
	speaks := translateTargets[room.Base(ch.Target)]
	switch ch.Mode {
	case room.ModeTranslate:
		if !speaks {
			return "", &engine.Error{
				Code:      "unsupported_language",
				Message:   fmt.Sprintf("the translation model cannot speak %s; use mode auto or interpret", ch.Target),
				Permanent: true,
			}
		}
		return KindTranslate, nil
	case room.ModeInterpret:
		return KindInterpret, nil
	default: // auto
		if speaks && ch.Voice == "" && len(ch.Glossary) == 0 {
			return KindTranslate, nil
		}
		return KindInterpret, nil
	}
}

// Open implements engine.Engine. It returns once the first connection is
// configured; the session then lives until Close or a permanent error,
// independent of ctx.
func (e *Engine) Open(ctx context.Context, ch engine.Channel, sink engine.Sink) (engine.Session, error) {
	if sink == nil {
		return nil, errors.New("openai: nil sink")
	}
	kind, err := e.KindFor(ch)
	if err != nil {
		return nil, err
	}
	if ch.Source == "" {
		ch.Source = "en"
	}
	switch kind {
	case KindTranslate:
		return openTranslation(ctx, e, ch, sink)
	default:
		return openInterpret(ctx, e, ch, sink)
	}
}

// endpoint is the WebSocket URL of a kind of session.
func (e *Engine) endpoint(kind string) string {
	u := *e.base
	q := u.Query()
	model := e.opt.RealtimeModel
	if kind == KindTranslate {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/translations"
		model = e.opt.TranslateModel
	}
	if q.Get("model") == "" && q.Get("deployment") == "" {
		q.Set("model", model)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// loopback reports whether host names this machine: "localhost" or a
// loopback address. Traffic to it never crosses a network.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
