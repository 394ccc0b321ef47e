// Package client holds babelcast's programmatic clients: Speak streams audio
// to a room's speaker WebSocket, Listen records a channel to WAV. The CLI
// (babelcast speak / listen) and the end-to-end tests use them.
package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/wire"
)

// HandshakeError is a WebSocket upgrade the server refused with an HTTP
// error: its status and the JSON error it explained it with.
type HandshakeError struct {
	Status  int
	Code    string // e.g. "unauthorized", "not_found"
	Message string
}

func (e *HandshakeError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("server refused the connection (%d %s): %s", e.Status, e.Code, msg)
}

// Permanent reports whether retrying cannot help (4xx other than 408/429).
func (e *HandshakeError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// CloseError is the server ending a session with a close code other than
// normal closure, and the error message it sent before, if any.
type CloseError struct {
	Code    int    // WebSocket close code, e.g. wire.CloseReplaced
	Reason  string // close frame reason
	Message string // from the server's last {"type":"error"} message
}

func (e *CloseError) Error() string {
	what := wire.CloseMeaning(e.Code)
	switch {
	case e.Code == websocket.CloseAbnormalClosure: // never sent: the line dropped
		what = "connection lost"
	case what == "":
		what = "connection closed"
	}
	s := fmt.Sprintf("%s (close %d)", what, e.Code)
	if e.Message != "" {
		s += ": " + e.Message
	} else if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// endpoint turns a server base URL (http, https, ws or wss; a bare host
// means http) and a path into a WebSocket URL.
func endpoint(server, path string, query url.Values) (string, error) {
	if server == "" {
		return "", errors.New("no server URL given")
	}
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", server, err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("server URL %q: scheme must be http, https, ws or wss", server)
	}
	if u.Host == "" {
		return "", fmt.Errorf("server URL %q has no host", server)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = query.Encode()
	u.Fragment = ""
	return u.String(), nil
}

func roomPath(roomID, tail string) string {
	return "/api/v1/rooms/" + url.PathEscape(roomID) + tail
}

// dialError explains a failed dial, reading the server's JSON error body
// when the upgrade was refused.
func dialError(err error, resp *http.Response) error {
	if resp == nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer resp.Body.Close()
	he := &HandshakeError{Status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var b httperr.Body
	if json.Unmarshal(body, &b) == nil && b.Error.Message != "" {
		he.Code, he.Message = b.Error.Code, b.Error.Message
	} else if resp.StatusCode == http.StatusSwitchingProtocols {
		return fmt.Errorf("connect: %w", err)
	} else {
		he.Message = strings.TrimSpace(string(body))
		if len(he.Message) > 200 {
			he.Message = he.Message[:200] + "…"
		}
	}
	return he
}

// decode reads a text message of a known type. A message that does not
// fit its type is passed over, as one of a type the client does not know.
func decode[T any](b []byte) (T, bool) {
	var m T
	err := json.Unmarshal(b, &m)
	return m, err == nil
}

// serverMessages is what Speak's and Listen's readers share: the text
// messages' types, shown to the caller's OnMessage, the server's errors,
// logged and kept for the close that follows them, and what the close
// means.
type serverMessages struct {
	log       io.Writer
	onMessage func(typ string, raw []byte)
	lastErr   string // the message of the last error the server sent
}

// text reads a text message's type and shows the message to onMessage, if
// set; an error is logged and kept. ok is false for a message that is not
// JSON, which is passed over.
func (sm *serverMessages) text(b []byte) (typ string, ok bool) {
	var head wire.Envelope
	if json.Unmarshal(b, &head) != nil {
		return "", false
	}
	if sm.onMessage != nil {
		sm.onMessage(head.Type, b)
	}
	if head.Type == wire.TypeError {
		if m, ok := decode[wire.Error](b); ok {
			sm.lastErr = m.Message
			logf(sm.log, "server error %s: %s", m.Code, m.Message)
		}
	}
	return head.Type, true
}

// closed reports whether a read error is the server closing the
// connection, and what that means: nil for a normal close, else a
// *CloseError that carries the last error the server sent.
func (sm *serverMessages) closed(err error) (bool, error) {
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return false, nil
	}
	if ce.Code == wire.CloseNormal {
		return true, nil
	}
	return true, &CloseError{Code: ce.Code, Reason: ce.Text, Message: sm.lastErr}
}

// logf writes a line to w, if there is one.
func logf(w io.Writer, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", a...)
	}
}
