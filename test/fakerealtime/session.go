package fakerealtime

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// protocol is what differs between the two endpoints. Every method is
// called with session.mu held.
type protocol interface {
	// sessionObject is the `session` of session.created/updated.
	sessionObject() map[string]any
	// handle acts on one client event of a known shape.
	handle(ev clientEvent)
	// stop ends any generation in progress: the session is ending.
	stop()
	// lang is the language the session speaks now.
	lang() string
	// fill adds the endpoint's details to a snapshot.
	fill(si *SessionInfo)
}

// clientEvent is a parsed client event: its type, id, raw JSON and its
// top-level fields, decoded once (an append may carry 15 MiB).
type clientEvent struct {
	typ    string
	id     string
	raw    json.RawMessage
	fields map[string]json.RawMessage
}

// object checks the event's top-level fields as object() does.
func (ev clientEvent) object(allowed ...string) (map[string]json.RawMessage, *apiError) {
	return checkKeys(ev.fields, "", allowed)
}

// session is one WebSocket connection to either endpoint.
type session struct {
	srv       *Server
	ep        Endpoint
	id        string
	model     string
	ws        *websocket.Conn
	out       *sender
	opened    time.Time
	expiresAt time.Time
	done      chan struct{} // closed when the connection is gone
	ended     atomic.Bool

	mu       sync.Mutex
	proto    protocol
	events   []ClientEvent
	appends  int
	ending   bool // a close is queued: later client events are ignored
	closedAt time.Time
	reason   string
	fired    map[*faultState]bool
	expiry   *time.Timer
}

func (s *Server) newSession(ws *websocket.Conn, ep Endpoint, model string) *session {
	s.mu.Lock()
	d := s.sessionDuration
	s.mu.Unlock()
	now := time.Now()
	ss := &session{
		srv:       s,
		ep:        ep,
		id:        newID("sess_"),
		model:     model,
		ws:        ws,
		out:       newSender(ws),
		opened:    now,
		expiresAt: now.Add(d),
		done:      make(chan struct{}),
		fired:     map[*faultState]bool{},
	}
	if ep == Translate {
		ss.proto = newTranslation(ss)
	} else {
		ss.proto = newRealtime(ss)
	}
	s.mu.Lock()
	s.sessions = append(s.sessions, ss)
	closed := s.closed
	s.mu.Unlock()
	if closed {
		ss.out.drop() // Close has already listed the sessions to drop
	}
	s.notify()
	return ss
}

func (ss *session) isOpen() bool { return !ss.ended.Load() }

// run serves the connection until it is gone.
func (ss *session) run(r *http.Request) {
	go ss.out.run()
	ss.mu.Lock()
	models := ss.srv.opts.RealtimeModels
	if ss.ep == Translate {
		models = ss.srv.opts.TranslateModels
	}
	switch {
	case ss.ep == Realtime && isBeta(r):
		ss.sendError("invalid_request_error", "beta_api_shape_disabled",
			"The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.", "", "")
		ss.endWith(4000, "beta API refused")
	case ss.model == "":
		ss.sendError("invalid_request_error", "missing_required_parameter",
			"Missing required parameter: 'model'.", "model", "")
		ss.endWith(1008, "no model")
	case !slices.Contains(models, ss.model):
		ss.sendError("invalid_request_error", "model_not_found",
			fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", ss.model), "model", "")
		ss.endWith(1008, "unknown model")
	default:
		ss.send(map[string]any{"type": "session.created", "session": ss.proto.sessionObject()})
		ss.expiry = time.AfterFunc(time.Until(ss.expiresAt), ss.expire)
		ss.checkFaults()
	}
	ss.mu.Unlock()

	reason := "client closed the connection"
	for {
		mt, data, err := ss.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				reason = fmt.Sprintf("client closed with %d", ce.Code)
			} else if !errors.Is(err, websocket.ErrReadLimit) {
				reason = "connection lost: " + err.Error()
			} else {
				reason = "event too large"
			}
			break
		}
		ss.receive(mt, data)
	}

	ss.mu.Lock()
	ss.proto.stop()
	if !ss.ending {
		ss.ending = true
		ss.reason = reason
	}
	if ss.expiry != nil {
		ss.expiry.Stop()
	}
	ss.closedAt = time.Now()
	ss.ended.Store(true)
	ss.mu.Unlock()
	ss.out.drop()
	<-ss.out.done
	ss.ws.Close()
	close(ss.done)
}

// isBeta reports whether the client asked for the beta protocol, which the
// real API has refused since May 2026.
func isBeta(r *http.Request) bool {
	for _, v := range r.Header.Values("OpenAI-Beta") {
		if strings.Contains(v, "realtime") {
			return true
		}
	}
	return slices.Contains(websocket.Subprotocols(r), "openai-beta.realtime-v1")
}

// receive parses, records and dispatches one client message.
func (ss *session) receive(mt int, data []byte) {
	defer ss.srv.notify()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ending {
		return
	}
	if mt != websocket.TextMessage {
		ss.record(ClientEvent{Type: "(binary)", Raw: json.RawMessage(`{}`), At: time.Now()})
		ss.sendError("invalid_request_error", "invalid_event",
			"Binary frames are not supported: send JSON events as text frames.", "", "")
		return
	}
	var head map[string]json.RawMessage
	if err := json.Unmarshal(data, &head); err != nil || head == nil {
		ss.record(ClientEvent{Type: "(invalid json)", Raw: json.RawMessage(`{}`), At: time.Now()})
		ss.sendError("invalid_request_error", "invalid_json",
			"We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)", "", "")
		return
	}
	ev := clientEvent{raw: data, fields: head}
	json.Unmarshal(head["type"], &ev.typ)
	json.Unmarshal(head["event_id"], &ev.id)
	ss.record(ss.recorded(ev, head))
	if ev.typ == "" {
		ss.fail(missing("type"), ev)
		return
	}
	if strings.HasSuffix(ev.typ, "input_audio_buffer.append") {
		ss.appends++
	}
	ss.proto.handle(ev)
	ss.checkFaults()
}

// recorded is what the inspection keeps of an event: all of it, except the
// audio of appends unless Options.KeepAudio.
func (ss *session) recorded(ev clientEvent, head map[string]json.RawMessage) ClientEvent {
	ce := ClientEvent{Type: ev.typ, At: time.Now()}
	if !strings.HasSuffix(ev.typ, "input_audio_buffer.append") || ss.srv.opts.KeepAudio {
		ce.Raw = json.RawMessage(slices.Clone(ev.raw))
	} else {
		ce.Raw, _ = json.Marshal(map[string]any{"type": ev.typ, "event_id": ev.id,
			"audio_bytes": base64Len(head["audio"])})
	}
	return ce
}

// base64Len is the decoded length of a JSON string of base64 (which has no
// escapes), without decoding it.
func base64Len(raw json.RawMessage) int {
	if len(raw) < 2 || raw[0] != '"' {
		return 0
	}
	b := raw[1 : len(raw)-1]
	n := len(b) / 4 * 3
	for i := len(b) - 1; i >= 0 && i >= len(b)-2 && b[i] == '='; i-- {
		n--
	}
	return n
}

func (ss *session) record(ce ClientEvent) { ss.events = append(ss.events, ce) }

// send queues a server event, stamping its event_id.
func (ss *session) send(ev map[string]any) { ss.sendAt(ev, time.Time{}) }

// sendAt queues a server event that the writer holds until notBefore.
func (ss *session) sendAt(ev map[string]any, notBefore time.Time) {
	ev["event_id"] = newID("event_")
	data, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("fakerealtime: marshal %v: %v", ev["type"], err)) // a bug in the fake
	}
	ss.out.push(outMsg{data: data, notBefore: notBefore})
}

// sendError queues an `error` event in OpenAI's shape.
func (ss *session) sendError(typ, code, msg, param, clientEventID string) {
	ss.send(map[string]any{"type": "error", "error": map[string]any{
		"type": typ, "code": nilIfEmpty(code), "message": msg,
		"param": nilIfEmpty(param), "event_id": nilIfEmpty(clientEventID),
	}})
}

// fail answers a client event with the error e.
func (ss *session) fail(e *apiError, ev clientEvent) {
	ss.sendError(e.typ, e.code, e.msg, e.param, ev.id)
}

// endWith queues a close frame after everything already queued; the
// session ignores client events from now on.
func (ss *session) endWith(code int, reason string) {
	if ss.ending {
		return
	}
	ss.ending = true
	ss.reason = reason
	ss.proto.stop()
	ss.out.close(code, reason)
}

// expire ends the session as the real one does at its maximum duration.
func (ss *session) expire() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.expireLocked()
}

func (ss *session) expireLocked() {
	if ss.ending {
		return
	}
	d := ss.expiresAt.Sub(ss.opened).Round(time.Minute)
	msg := fmt.Sprintf("Your session hit the maximum duration of %d minutes.", int(d.Minutes()))
	if d < time.Minute {
		msg = fmt.Sprintf("Your session hit the maximum duration of %s.", ss.expiresAt.Sub(ss.opened).Round(time.Millisecond))
	}
	ss.sendError("invalid_request_error", "session_expired", msg, "", "")
	ss.endWith(1001, "session expired")
}

// info snapshots the session.
func (ss *session) info() SessionInfo {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	si := SessionInfo{
		ID: ss.id, Endpoint: ss.ep, Model: ss.model, Lang: ss.proto.lang(),
		Opened: ss.opened, Closed: ss.closedAt, Open: ss.closedAt.IsZero(),
		CloseReason: ss.reason, ExpiresAt: ss.expiresAt,
		Events: slices.Clone(ss.events), Appends: ss.appends,
	}
	ss.proto.fill(&si)
	return si
}

// expiresAtUnix is expires_at as the API sends it: Unix seconds, rounded up.
func (ss *session) expiresAtUnix() int64 {
	return (ss.expiresAt.UnixNano() + int64(time.Second) - 1) / int64(time.Second)
}

// outMsg is one queued WebSocket message.
type outMsg struct {
	data      []byte
	notBefore time.Time
	close     bool
	code      int
	reason    string
}

// sender writes a connection's messages in order from one goroutine, with
// an unbounded queue so the fake never blocks on a client that is busy
// sending (the real service buffers too).
type sender struct {
	ws      *websocket.Conn
	mu      sync.Mutex
	q       []outMsg
	closing bool // a close is queued: later messages are dropped
	wake    chan struct{}
	dropped chan struct{}
	dropMu  sync.Once
	done    chan struct{}
}

func newSender(ws *websocket.Conn) *sender {
	return &sender{ws: ws, wake: make(chan struct{}, 1), dropped: make(chan struct{}), done: make(chan struct{})}
}

func (w *sender) push(m outMsg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closing {
		return
	}
	w.closing = m.close
	w.q = append(w.q, m)
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// close queues a close frame after everything queued so far.
func (w *sender) close(code int, reason string) {
	w.push(outMsg{close: true, code: code, reason: reason})
}

// drop cuts the connection at once, without a close frame.
func (w *sender) drop() {
	w.dropMu.Do(func() {
		close(w.dropped)
		w.ws.NetConn().Close()
	})
}

func (w *sender) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		if len(w.q) == 0 {
			w.mu.Unlock()
			select {
			case <-w.wake:
				continue
			case <-w.dropped:
				return
			}
		}
		m := w.q[0]
		w.q = w.q[1:]
		w.mu.Unlock()
		if wait := time.Until(m.notBefore); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-w.dropped:
				t.Stop()
				return
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		if m.close {
			w.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(m.code, m.reason), deadline)
			// Give the client a moment to answer the close, then the
			// reader gives up and the connection goes.
			w.ws.SetReadDeadline(time.Now().Add(2 * time.Second))
			return
		}
		w.ws.SetWriteDeadline(deadline)
		if err := w.ws.WriteMessage(websocket.TextMessage, m.data); err != nil {
			w.drop()
			return
		}
	}
}

// apiError is an `error` event's payload.
type apiError struct{ typ, code, msg, param string }

func unknownParam(path string) *apiError {
	return &apiError{"invalid_request_error", "unknown_parameter", fmt.Sprintf("Unknown parameter: '%s'.", path), path}
}

func missing(path string) *apiError {
	return &apiError{"invalid_request_error", "missing_required_parameter", fmt.Sprintf("Missing required parameter: '%s'.", path), path}
}

func invalidType(path, want string, got json.RawMessage) *apiError {
	return &apiError{"invalid_request_error", "invalid_type",
		fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", path, want, jsonKind(got)), path}
}

func invalidValue(path, got string, supported []string) *apiError {
	msg := fmt.Sprintf("Invalid value: '%s'.", got)
	if len(supported) > 0 {
		msg += " Supported values are: '" + strings.Join(supported, "', '") + "'."
	}
	return &apiError{"invalid_request_error", "invalid_value", msg, path}
}

func jsonKind(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "" || s == "null":
		return "null"
	case s[0] == '{':
		return "an object"
	case s[0] == '[':
		return "an array"
	case s[0] == '"':
		return "a string"
	case s == "true" || s == "false":
		return "a boolean"
	default:
		return "a number"
	}
}

func isNull(raw json.RawMessage) bool { return strings.TrimSpace(string(raw)) == "null" }

// object decodes raw as a JSON object and refuses keys outside allowed, as
// the real API refuses unknown parameters (the first one, alphabetically).
func object(raw json.RawMessage, path string, allowed ...string) (map[string]json.RawMessage, *apiError) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, invalidType(path, "an object", raw)
	}
	return checkKeys(m, path, allowed)
}

// objectType reads the "type" of the object raw, which must have one: the
// field that says which other keys the object may have.
func objectType(raw json.RawMessage, path string) (string, *apiError) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", invalidType(path, "an object", raw)
	}
	if head.Type == nil {
		return "", missing(join(path, "type"))
	}
	return *head.Type, nil
}

func checkKeys(m map[string]json.RawMessage, path string, allowed []string) (map[string]json.RawMessage, *apiError) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return nil, unknownParam(join(path, k))
		}
	}
	return m, nil
}

// join makes a parameter path: "session" + "audio" → "session.audio".
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// requiredObject reads m's parameter key, which must be there, as an
// object with the keys allowed.
func requiredObject(m map[string]json.RawMessage, path, key string, allowed ...string) (map[string]json.RawMessage, *apiError) {
	if m[key] == nil {
		return nil, missing(join(path, key))
	}
	return object(m[key], join(path, key), allowed...)
}

// requiredStr reads m's parameter key, which must be there, as a string.
func requiredStr(m map[string]json.RawMessage, path, key string) (string, *apiError) {
	if m[key] == nil {
		return "", missing(join(path, key))
	}
	return str(m[key], join(path, key))
}

func str(raw json.RawMessage, path string) (string, *apiError) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalidType(path, "a string", raw)
	}
	return s, nil
}

func boolean(raw json.RawMessage, path string) (bool, *apiError) {
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, invalidType(path, "a boolean", raw)
	}
	return b, nil
}

func number(raw json.RawMessage, path string, lo, hi float64) (float64, *apiError) {
	return inRange(raw, path, lo, hi, "a number", "decimal_out_of_range")
}

func integer(raw json.RawMessage, path string, lo, hi int) (int, *apiError) {
	return inRange(raw, path, lo, hi, "an integer", "integer_out_of_range")
}

// inRange reads raw as a T between lo and hi; kind names the type in the
// invalid_type error, code is the error for a value out of range.
func inRange[T int | float64](raw json.RawMessage, path string, lo, hi T, kind, code string) (T, *apiError) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil || isNull(raw) {
		return 0, invalidType(path, kind, raw)
	}
	if v < lo || v > hi {
		return 0, &apiError{"invalid_request_error", code,
			fmt.Sprintf("Invalid '%s': %v is out of range; expected a value between %v and %v.", path, v, lo, hi), path}
	}
	return v, nil
}

// decodeAudio checks and decodes an append's base64 audio.
func decodeAudio(raw json.RawMessage, path string) ([]byte, *apiError) {
	if raw == nil {
		return nil, missing(path)
	}
	if n := len(raw) - 2; n > maxAppendBytes { // checked before decoding 15 MiB
		return nil, &apiError{"invalid_request_error", "string_above_max_length",
			fmt.Sprintf("Invalid '%s': string too long. Expected a string with maximum length %d, but got a string with length %d instead.", path, maxAppendBytes, n), path}
	}
	s, e := str(raw, path)
	if e != nil {
		return nil, e
	}
	pcm, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, &apiError{"invalid_request_error", "invalid_value",
			fmt.Sprintf("Invalid '%s': expected base64-encoded audio bytes.", path), path}
	}
	return pcm, nil
}
