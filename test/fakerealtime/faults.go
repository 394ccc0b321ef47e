package fakerealtime

import (
	"fmt"
	"time"
)

// Action is what a Fault does to a session.
type Action int

const (
	// ActionError sends an `error` event with Fault.Code, then closes the
	// session with the code's close code (see Fault.CloseCode).
	ActionError Action = iota
	// ActionDrop cuts the TCP connection without a close frame, as a
	// network failure or a crashed server would.
	ActionDrop
	// ActionExpire ends the session as at its maximum duration: `error`
	// session_expired, then close 1001.
	ActionExpire
	// ActionOffTopic makes the session's next realtime response answer
	// instead of translating ("Sure! Happy to help…", spoken at ToneHz("")),
	// as instructed general models sometimes do.
	ActionOffTopic
)

// Fault is a misbehaviour armed on the server and fired in the sessions it
// matches: each session is checked after it is created and after every
// client event it receives, and the fault fires at the first check where the
// session matches and has received at least AfterAppends appends.
type Fault struct {
	Endpoint     Endpoint // "" matches both
	Lang         string   // "" matches any; else the session's language (translation: output language, realtime: LanguageOf(instructions))
	AfterAppends int
	Action       Action

	// For ActionError. Code defaults to server_error; Type and Message
	// default to what OpenAI sends for the code. RetryAfter adds "Please try
	// again in Xs." to the message, as rate limit errors say.
	Code       string
	Type       string
	Message    string
	RetryAfter time.Duration
	// CloseCode closes the session after the error: 0 picks the code's
	// default (1008 for invalid_api_key, insufficient_quota and
	// model_not_found, 1011 for server_error, none for the others); a
	// negative value keeps the session open.
	CloseCode int

	// Sessions is how many sessions the fault hits: 0 means one, a negative
	// value every matching session.
	Sessions int
}

type faultState struct {
	f         Fault
	remaining int // < 0: unlimited
}

// errorDefaults are the type, message and close code of the error codes
// tests inject.
var errorDefaults = map[string]struct {
	typ, msg string
	close    int
}{
	"invalid_api_key":     {"invalid_request_error", "Incorrect API key provided.", 1008},
	"insufficient_quota":  {"insufficient_quota", "You exceeded your current quota, please check your plan and billing details.", 1008},
	"model_not_found":     {"invalid_request_error", "The model does not exist or you do not have access to it.", 1008},
	"rate_limit_exceeded": {"rate_limit_exceeded", "Rate limit reached for tokens.", 0},
	"server_error":        {"server_error", "The server had an error while processing your request. Sorry about that!", 1011},
}

// AddFault arms a fault.
func (s *Server) AddFault(f Fault) {
	n := f.Sessions
	if n == 0 {
		n = 1
	}
	s.mu.Lock()
	s.faults = append(s.faults, &faultState{f: f, remaining: n})
	s.mu.Unlock()
	s.logf("fakerealtime: fault armed: %+v", f)
}

// FailNext makes the next n sessions of ep ("" for both) fail at once with
// an `error` of code, closed as the code's default says. A shorthand for
// AddFault.
func (s *Server) FailNext(ep Endpoint, n int, code string) {
	s.AddFault(Fault{Endpoint: ep, Action: ActionError, Code: code, Sessions: n})
}

// ClearFaults disarms every fault not yet fired.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// checkFaults fires the faults that match the session now; ss.mu held.
func (ss *session) checkFaults() {
	if ss.ending {
		return
	}
	lang := ss.proto.lang()
	var fire []Fault
	srv := ss.srv
	srv.mu.Lock()
	for _, fs := range srv.faults {
		f := fs.f
		if ss.fired[fs] || fs.remaining == 0 || (f.Endpoint != "" && f.Endpoint != ss.ep) ||
			ss.appends < f.AfterAppends || (f.Lang != "" && (lang == "" || baseLang(lang) != baseLang(f.Lang))) {
			continue
		}
		ss.fired[fs] = true
		if fs.remaining > 0 {
			fs.remaining--
		}
		fire = append(fire, f)
	}
	srv.mu.Unlock()
	for _, f := range fire {
		srv.logf("fakerealtime: fault fires in %s session %s: action %d code %q", ss.ep, ss.id, f.Action, f.Code)
		ss.apply(f)
	}
}

// apply carries out a fault; ss.mu held.
func (ss *session) apply(f Fault) {
	if ss.ending {
		return
	}
	switch f.Action {
	case ActionDrop:
		ss.ending = true
		ss.reason = "dropped"
		ss.proto.stop()
		ss.out.drop()
	case ActionExpire:
		ss.expireLocked()
	case ActionOffTopic:
		if rt, ok := ss.proto.(*realtime); ok {
			rt.offTopic++
		}
	default:
		code := f.Code
		if code == "" {
			code = "server_error"
		}
		d, known := errorDefaults[code]
		if !known {
			d.typ, d.msg = "invalid_request_error", "Injected error "+code+"."
		}
		if f.Type != "" {
			d.typ = f.Type
		}
		if f.Message != "" {
			d.msg = f.Message
		}
		if f.RetryAfter > 0 {
			d.msg += fmt.Sprintf(" Please try again in %.3fs.", f.RetryAfter.Seconds())
		}
		if f.CloseCode != 0 {
			d.close = f.CloseCode
		}
		ss.sendError(d.typ, code, d.msg, "", "")
		if d.close > 0 {
			ss.endWith(d.close, "error "+code)
		}
	}
}

// forSessions applies fn to the open sessions of ep ("" for both) and
// counts them.
func (s *Server) forSessions(ep Endpoint, id string, fn func(*session)) int {
	s.mu.Lock()
	open := s.openSessions(ep)
	s.mu.Unlock()
	n := 0
	for _, ss := range open {
		if id != "" && ss.id != id {
			continue
		}
		ss.mu.Lock()
		if !ss.ending {
			fn(ss)
			n++
		}
		ss.mu.Unlock()
	}
	return n
}

// Drop cuts every open session of ep ("" for both) now, without a close
// frame; it returns how many it cut.
func (s *Server) Drop(ep Endpoint) int {
	return s.forSessions(ep, "", func(ss *session) { ss.apply(Fault{Action: ActionDrop}) })
}

// DropSession cuts one session by id.
func (s *Server) DropSession(id string) bool {
	return s.forSessions("", id, func(ss *session) { ss.apply(Fault{Action: ActionDrop}) }) > 0
}

// Expire ends every open session of ep now with session_expired and close
// 1001; it returns how many.
func (s *Server) Expire(ep Endpoint) int {
	return s.forSessions(ep, "", func(ss *session) { ss.expireLocked() })
}

// ExpireSession expires one session by id.
func (s *Server) ExpireSession(id string) bool {
	return s.forSessions("", id, func(ss *session) { ss.expireLocked() }) > 0
}

// SendError sends an `error` event of code to every open session of ep,
// closing them as Fault.CloseCode says (0: the code's default).
func (s *Server) SendError(ep Endpoint, code string, closeCode int) int {
	return s.forSessions(ep, "", func(ss *session) {
		ss.apply(Fault{Action: ActionError, Code: code, CloseCode: closeCode})
	})
}

// RejectConnections answers every new connection with HTTP 429
// rate_limit_exceeded and a Retry-After of retryAfter, for d from now.
func (s *Server) RejectConnections(d, retryAfter time.Duration) {
	s.mu.Lock()
	s.rejectUntil = time.Now().Add(d)
	s.rejectRetry = retryAfter
	s.mu.Unlock()
}

// SetMaxConcurrent refuses (HTTP 429) connections beyond n open sessions;
// 0 lifts the limit.
func (s *Server) SetMaxConcurrent(n int) {
	s.mu.Lock()
	s.maxConcurrent = n
	s.mu.Unlock()
}

// SetSessionDuration sets how long new sessions live before
// session_expired; their expires_at says so.
func (s *Server) SetSessionDuration(d time.Duration) {
	s.mu.Lock()
	s.sessionDuration = d
	s.mu.Unlock()
}

// SetResponseDelay sets the wall time before a realtime response's first
// audio, and the wall time translation output is held back.
func (s *Server) SetResponseDelay(d time.Duration) {
	s.mu.Lock()
	s.responseDelay = d
	s.mu.Unlock()
}

// SetResponseSpeed sets how many times faster than real time realtime
// responses stream (1 is real time; +Inf at once).
func (s *Server) SetResponseSpeed(x float64) {
	if x <= 0 {
		return
	}
	s.mu.Lock()
	s.responseSpeed = x
	s.mu.Unlock()
}
