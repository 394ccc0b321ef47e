// Package fakerealtime is a fake of the OpenAI Realtime API for tests: the
// dedicated translation endpoint (/v1/realtime/translations) and the GA
// realtime endpoint (/v1/realtime), served over real WebSockets on loopback.
//
// It speaks the published protocol (event names, field names, error shape)
// and is strict where the real service is strict, so a client that would fail
// in production fails here: wrong key → HTTP 401; the beta header → refused;
// unknown or misplaced session fields → an `error` event and the whole update
// ignored; unknown client event types → `error`; response.create while a
// response is active → `error`; a turn that ends during a response with
// interrupt_response:false → no response at all; speech during a response
// with interrupt_response:true → the response is cancelled; the translation
// model's output lags its input in model time, so audio that is never
// followed by more audio (or by session.close) is never translated.
//
// Instead of a model it "translates" by tone: speech is any 20 ms (realtime)
// or 200 ms (translation) block whose RMS exceeds Options.SpeechRMS, and the
// translation of speech is a sine at ToneHz(target language) lasting as long
// as the speech it translates. A test checks which language a channel
// carries with Goertzel or DetectLanguage. Captions are predictable:
// the n-th sentence (translation) or turn (realtime) of a session is
// transcribed "source sentence n." and translated "[es] sentence n.".
//
// How the fake differs from the real service (beyond having no model):
//   - Audio formats: only audio/pcm at 24 kHz. pcmu/pcma, valid in the real
//     API, are refused here with an `error`.
//   - Only one response may be active per session, whatever its
//     conversation; the real API may allow out-of-band responses alongside.
//   - Server VAD is energy based (threshold 0.5 ↔ Options.SpeechRMS, scaled
//     linearly); semantic_vad is accepted and behaves as server_vad with its
//     default silence. idle_timeout_ms is accepted and ignored.
//   - Tools, tool_choice, prompt, tracing, truncation, include and
//     max_output_tokens are accepted without deep validation and ignored.
//     Transcription models are not checked against a list.
//   - Translation: silent input produces no output events at all (the real
//     model may send silence); elapsed_ms is the model time (ms of appended
//     audio) at which the translated speech began; output is 200 ms frames.
//   - Token counts are synthetic (user audio 10 tokens/s, assistant audio
//     20 tokens/s, text 1 token/4 bytes) but grow with context as the real
//     ones do; rate_limits.updated numbers are made up.
//   - Error codes the docs do not pin down (unknown item id, bad JSON,
//     concurrency refusal) are plausible guesses; match on the event type,
//     and on code only for the documented ones (invalid_api_key,
//     unknown_parameter, conversation_already_has_active_response,
//     session_expired, …).
//   - The beta header is refused after the upgrade with an `error`
//     (code beta_api_shape_disabled) and close 4000, as observed in the field.
//   - Unknown model: `error` (model_not_found) after the upgrade, then close.
//   - Append events are recorded without their audio unless Options.KeepAudio.
//   - Conversation items are announced with the GA events
//     conversation.item.added and conversation.item.done (never the beta's
//     conversation.item.created). Input transcription events follow the
//     commit at once; the real ones arrive later, often after the response
//     has started.
//   - User audio added with conversation.item.create (a turn replayed on a
//     new connection) is not a turn of that session: it is not in
//     SessionInfo.Turns, and a response over it says "[xx] (audio).".
//   - A response ended by the connection closing is recorded with status
//     "incomplete" (reason session_ended); nothing is sent for it.
//   - The realtime language comes from Options.LanguageOf, by default the
//     first language named after "into" in the instructions (a response's
//     own instructions override the session's).
package fakerealtime

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Endpoint names one of the two services.
type Endpoint string

const (
	// Translate is /v1/realtime/translations (gpt-realtime-translate).
	Translate Endpoint = "translate"
	// Realtime is /v1/realtime (gpt-realtime, GA protocol).
	Realtime Endpoint = "realtime"
)

// Options configure a Server. The zero value is a working OpenAI fake with
// key DefaultAPIKey.
type Options struct {
	// APIKey is the key clients must present; default DefaultAPIKey.
	APIKey string
	// Azure makes the realtime endpoint authenticate with the `api-key`
	// header (a bearer token is then refused), as Azure OpenAI does.
	Azure bool
	// TranslateModels and RealtimeModels are the models each endpoint knows;
	// defaults gpt-realtime-translate and gpt-realtime.
	TranslateModels []string
	RealtimeModels  []string
	// TranslateDelay is how far, in model time (ms of appended audio), the
	// translation lags its input; default 600 ms.
	TranslateDelay time.Duration
	// SpeechRMS is the RMS (0..1 of full scale) above which audio counts as
	// speech; default 0.01 (-40 dBFS).
	SpeechRMS float64
	// SilentOnTargetLanguage makes the translation endpoint stay silent on
	// speech already in the target language (a tone at ToneHz(target)).
	SilentOnTargetLanguage bool
	// LanguageOf names the language a realtime session speaks, from its
	// instructions; default DefaultLanguageOf.
	LanguageOf func(instructions string) string
	// ResponseSpeed is how many times faster than real time a realtime
	// response streams its audio; default 10. +Inf streams at once.
	ResponseSpeed float64
	// ResponseDelay is the wall time between response.created and the first
	// audio of a realtime response, and the wall time every translation
	// output event is held back; default 0. SetResponseDelay changes it.
	ResponseDelay time.Duration
	// SessionDuration is how long a session lives before session_expired;
	// default 60 minutes. SetSessionDuration changes it for new sessions.
	SessionDuration time.Duration
	// MaxConcurrent refuses connections (HTTP 429) beyond this many open
	// sessions, both endpoints together; 0 means no limit.
	MaxConcurrent int
	// KeepAudio keeps the audio of recorded append events; by default they
	// are recorded as {"type","event_id","audio_bytes"} to save memory.
	KeepAudio bool
	// Logf, when set, receives a line per connection and per fault.
	Logf func(format string, args ...any)
}

// DefaultAPIKey is the key a zero Options expects.
const DefaultAPIKey = "sk-fake-realtime"

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	opts     Options
	hs       *httptest.Server
	upgrader websocket.Upgrader
	wg       sync.WaitGroup // connection handlers and response generators

	mu              sync.Mutex
	closed          bool
	sessions        []*session
	open            int
	faults          []*faultState
	rejectUntil     time.Time
	rejectRetry     time.Duration
	maxConcurrent   int
	sessionDuration time.Duration
	responseDelay   time.Duration
	responseSpeed   float64
	attempts        map[Endpoint]int // connection attempts, refused ones included
	changed         chan struct{}    // closed and replaced on every change
}

// New starts a fake on a loopback port. When tb is not nil the server is
// closed in tb.Cleanup; otherwise the caller must Close it.
func New(tb testing.TB, opts Options) *Server {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if len(opts.TranslateModels) == 0 {
		opts.TranslateModels = []string{"gpt-realtime-translate"}
	}
	if len(opts.RealtimeModels) == 0 {
		opts.RealtimeModels = []string{"gpt-realtime"}
	}
	if opts.TranslateDelay <= 0 {
		opts.TranslateDelay = 600 * time.Millisecond
	}
	if opts.SpeechRMS <= 0 {
		opts.SpeechRMS = 0.01
	}
	if opts.LanguageOf == nil {
		opts.LanguageOf = DefaultLanguageOf
	}
	if opts.ResponseSpeed <= 0 {
		opts.ResponseSpeed = 10
	}
	if opts.SessionDuration <= 0 {
		opts.SessionDuration = 60 * time.Minute
	}
	s := &Server{
		opts:            opts,
		maxConcurrent:   opts.MaxConcurrent,
		sessionDuration: opts.SessionDuration,
		responseDelay:   opts.ResponseDelay,
		responseSpeed:   opts.ResponseSpeed,
		attempts:        map[Endpoint]int{},
		changed:         make(chan struct{}),
		upgrader: websocket.Upgrader{
			CheckOrigin:     func(*http.Request) bool { return true },
			ReadBufferSize:  64 << 10,
			WriteBufferSize: 64 << 10,
			Subprotocols:    []string{"realtime"},
		},
	}
	mux := http.NewServeMux()
	for _, prefix := range []string{"/v1", "/openai/v1"} {
		mux.HandleFunc("GET "+prefix+"/realtime", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, Realtime) })
		mux.HandleFunc("GET "+prefix+"/realtime/translations", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, Translate) })
	}
	s.hs = httptest.NewServer(mux)
	if tb != nil {
		tb.Cleanup(s.Close)
	}
	return s
}

// URL is the realtime base URL, ws://127.0.0.1:port/v1/realtime; the
// translation endpoint is URL()+"/translations".
func (s *Server) URL() string { return "ws" + strings.TrimPrefix(s.hs.URL, "http") + "/v1/realtime" }

// AzureURL is the same service under Azure OpenAI's path,
// ws://127.0.0.1:port/openai/v1/realtime.
func (s *Server) AzureURL() string {
	return "ws" + strings.TrimPrefix(s.hs.URL, "http") + "/openai/v1/realtime"
}

// APIKey is the key the server expects.
func (s *Server) APIKey() string { return s.opts.APIKey }

// Close drops every connection and stops the server. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.hs.Close() // no new connections; upgrades in flight register and see closed
	s.mu.Lock()
	open := s.openSessions("")
	s.mu.Unlock()
	for _, ss := range open {
		ss.out.drop()
	}
	s.wg.Wait()
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// notify wakes WaitUntil callers.
func (s *Server) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// WaitUntil calls cond each time the fake's state changes (a session opens or
// closes, a client event arrives, a response starts or ends) until it returns
// true or timeout passes. It reports cond's last result.
func (s *Server) WaitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return cond()
		}
	}
}

// openSessions lists the open sessions of ep ("" for all); s.mu held.
func (s *Server) openSessions(ep Endpoint) []*session {
	var out []*session
	for _, ss := range s.sessions {
		if ss.isOpen() && (ep == "" || ss.ep == ep) {
			out = append(out, ss)
		}
	}
	return out
}

// httpError writes OpenAI's error JSON.
func httpError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": msg, "type": typ, "param": nil, "code": nilIfEmpty(code),
	}})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// serve authenticates and admits a connection, then runs its session.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, ep Endpoint) {
	s.mu.Lock()
	s.attempts[ep]++
	s.mu.Unlock()
	s.notify()
	if !s.authorized(w, r, ep) {
		return
	}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "server_error", "server_error", "The server is shutting down.")
		return
	case time.Now().Before(s.rejectUntil):
		retry := s.rejectRetry
		s.mu.Unlock()
		w.Header().Set("Retry-After", fmt.Sprint(max(1, int(retry.Seconds()+0.999))))
		httpError(w, http.StatusTooManyRequests, "requests", "rate_limit_exceeded",
			fmt.Sprintf("Rate limit reached for requests. Please try again in %.3fs.", retry.Seconds()))
		return
	case s.maxConcurrent > 0 && s.open >= s.maxConcurrent:
		s.mu.Unlock()
		httpError(w, http.StatusTooManyRequests, "requests", "rate_limit_exceeded",
			fmt.Sprintf("Too many concurrent realtime sessions: the limit is %d.", s.maxConcurrent))
		return
	}
	s.open++ // reserve the slot before the upgrade so racing dials respect the limit
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
		return // the upgrader has answered
	}
	ws.SetReadLimit(maxEventBytes)
	ss := s.newSession(ws, ep, r.URL.Query().Get("model"))
	s.logf("fakerealtime: %s session %s opened (model %q)", ep, ss.id, ss.model)
	ss.run(r)
	s.mu.Lock()
	s.open--
	s.mu.Unlock()
	s.logf("fakerealtime: %s session %s ended: %s", ep, ss.id, ss.info().CloseReason)
	s.notify()
}

// authorized checks the key as the real endpoint does and answers 401 if not.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, ep Endpoint) bool {
	got, how := "", "bearer"
	if ep == Realtime && s.opts.Azure {
		got, how = r.Header.Get("api-key"), "api-key"
	} else if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		got = strings.TrimPrefix(a, "Bearer ")
	} else {
		// Browsers authenticate through a subprotocol.
		for _, p := range websocket.Subprotocols(r) {
			if k, ok := strings.CutPrefix(p, "openai-insecure-api-key."); ok {
				got = k
			}
		}
	}
	if got == s.opts.APIKey {
		return true
	}
	msg := "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
	if how == "api-key" {
		msg = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."
	}
	if got != "" {
		msg = fmt.Sprintf("Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.", maskKey(got))
	}
	httpError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", msg)
	return false
}

func maskKey(k string) string {
	if len(k) <= 8 {
		return "****"
	}
	return k[:3] + "****" + k[len(k)-4:]
}

// maxEventBytes bounds one client event; an append carries at most 15 MiB
// of base64 and the fake must read it whole to answer with an `error`.
const (
	maxAppendBytes = 15 << 20
	maxEventBytes  = maxAppendBytes + 1<<20
)

// newID makes an id in OpenAI's style: prefix + 21 base62 characters.
func newID(prefix string) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 21)
	for i := range b {
		b[i] = chars[rand.IntN(len(chars))]
	}
	return prefix + string(b)
}

// ClientEvent is one event a client sent, as received.
type ClientEvent struct {
	Type string
	// Raw is the event's JSON; for appends without Options.KeepAudio it is
	// {"type","event_id","audio_bytes"} instead.
	Raw json.RawMessage
	At  time.Time
}

// SessionInfo is a snapshot of one session, open or ended.
type SessionInfo struct {
	ID          string
	Endpoint    Endpoint
	Model       string
	Lang        string // translation: audio.output.language; realtime: LanguageOf(instructions)
	Opened      time.Time
	Closed      time.Time // zero while open
	Open        bool
	CloseReason string
	ExpiresAt   time.Time
	Events      []ClientEvent
	Appends     int
	InputMs     int64 // model time: ms of audio appended

	// Translation sessions.
	OutputMs int64 // ms of translated audio sent

	// Realtime sessions.
	Instructions      string
	Turns             []string // user audio items committed, in order
	Responses         []ResponseInfo
	ConversationItems int // items now in the default conversation
}

// EventTypes lists the types of the client events received, in order.
func (si SessionInfo) EventTypes() []string {
	out := make([]string, len(si.Events))
	for i, e := range si.Events {
		out[i] = e.Type
	}
	return out
}

// AnswerCounts counts, for every turn, the completed responses whose input
// held it: 1 everywhere means every turn was translated exactly once.
func (si SessionInfo) AnswerCounts() map[string]int {
	out := make(map[string]int, len(si.Turns))
	for _, t := range si.Turns {
		out[t] = 0
	}
	for _, r := range si.Responses {
		if r.Status != "completed" {
			continue
		}
		for _, t := range r.Turns {
			out[t]++
		}
	}
	return out
}

// ResponseInfo describes one realtime response.
type ResponseInfo struct {
	ID           string
	SessionID    string
	Auto         bool   // created by server VAD rather than response.create
	Conversation string // "auto" or "none"
	Status       string // in_progress, completed, cancelled
	Reason       string // for cancelled: turn_detected or client_cancelled
	InputItems   int    // items in the response's context
	InputTokens  int
	Turns        []string // user audio items it translated
	AudioMs      int64    // audio it was to speak
	SentMs       int64    // audio actually sent
	Lang         string
	Transcript   string
}

// Sessions snapshots every session the server has seen, in opening order.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	all := slices.Clone(s.sessions)
	s.mu.Unlock()
	out := make([]SessionInfo, len(all))
	for i, ss := range all {
		out[i] = ss.info()
	}
	return out
}

// Session snapshots one session by id.
func (s *Server) Session(id string) (SessionInfo, bool) {
	for _, si := range s.Sessions() {
		if si.ID == id {
			return si, true
		}
	}
	return SessionInfo{}, false
}

// Opened counts sessions ever opened on ep ("" for both).
func (s *Server) Opened(ep Endpoint) int {
	n := 0
	for _, si := range s.Sessions() {
		if ep == "" || si.Endpoint == ep {
			n++
		}
	}
	return n
}

// Attempts counts connection attempts on ep ("" for both), including those
// refused before a session began (wrong key, rate limit, concurrency
// limit): how hard a client hammers a service that keeps saying no.
func (s *Server) Attempts(ep Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ep == "" {
		return s.attempts[Translate] + s.attempts[Realtime]
	}
	return s.attempts[ep]
}

// OpenedFor counts sessions opened on ep whose language is lang.
func (s *Server) OpenedFor(ep Endpoint, lang string) int {
	n := 0
	for _, si := range s.Sessions() {
		if (ep == "" || si.Endpoint == ep) && baseLang(si.Lang) == baseLang(lang) {
			n++
		}
	}
	return n
}

// OpenNow counts sessions currently open on ep ("" for both).
func (s *Server) OpenNow(ep Endpoint) int {
	n := 0
	for _, si := range s.Sessions() {
		if si.Open && (ep == "" || si.Endpoint == ep) {
			n++
		}
	}
	return n
}

// Responses lists every realtime response of every session.
func (s *Server) Responses() []ResponseInfo {
	var out []ResponseInfo
	for _, si := range s.Sessions() {
		out = append(out, si.Responses...)
	}
	return out
}

// MaxResponseInputItems is the largest context any response had: flat when
// a client uses out-of-band responses or deletes old items.
func (s *Server) MaxResponseInputItems() int {
	m := 0
	for _, r := range s.Responses() {
		m = max(m, r.InputItems)
	}
	return m
}

// CancelledResponses counts responses that ended cancelled.
func (s *Server) CancelledResponses() int {
	n := 0
	for _, r := range s.Responses() {
		if r.Status == "cancelled" {
			n++
		}
	}
	return n
}
