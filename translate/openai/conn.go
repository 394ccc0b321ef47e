package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/translate/engine"
)

const (
	setupTimeout   = 15 * time.Second // session.created / session.updated
	writeTimeout   = 10 * time.Second
	maxServerEvent = 16 << 20
	pingEvery      = 15 * time.Second
	readIdle       = 45 * time.Second // no message nor pong for this long: the connection is dead
)

// conn is one WebSocket connection to the Realtime API and the input it
// has been given. Only the session's run goroutine writes to it; its
// reader goroutine forwards server events.
type conn struct {
	id         int
	ws         *websocket.Conn
	opened     time.Time
	expiresAt  time.Time
	sentEvents int
	broken     bool // a write failed; the reader will report the close
	lastPing   time.Time
	closed     bool // the socket is closed (or closing)
	retired    bool // the session moved off it: it finishes what it holds, then closes
	ended      bool // its reader reported the end: nothing more will come of it

	// The model's clock is its input: position p, in bytes of audio
	// appended, is model time. start is the wall time of position 0,
	// moved back when the input ran ahead of the wall clock; marks map
	// positions to the capture time of the speech there.
	appended int
	start    time.Time
	marks    marks
}

// rotateAt is when a fresh connection should take over from c:
// RotateBefore ahead of its expiry, but never in the first half of its
// life. A provider whose sessions live shorter than RotateBefore (or a
// clock that disagrees with its expires_at) would otherwise make every
// fresh connection rotate at once, a storm of connections.
func (c *conn) rotateAt(before time.Duration) time.Time {
	return c.expiresAt.Add(-min(before, c.expiresAt.Sub(c.opened)/2))
}

// send writes one client event, filling in its type and a fresh event_id,
// and returns the id. A failed write closes the socket so the reader
// reports the loss.
func (c *conn) send(ev clientEvent) string {
	c.sentEvents++
	id := "bc_" + strconv.Itoa(c.id) + "_" + strconv.Itoa(c.sentEvents)
	h := ev.header()
	h.Type, h.EventID = ev.eventType(), id
	if c.broken || c.closed {
		return id
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return id // cannot happen for the event structs of this package
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		c.broken = true
		_ = c.ws.Close()
	}
	return id
}

// keepAlive pings the server now and then; the reader's deadline, pushed
// on by every message and pong, notices a connection that died silently.
func (c *conn) keepAlive(now time.Time) {
	if c.closed || c.broken || now.Sub(c.lastPing) < pingEvery {
		return
	}
	c.lastPing = now
	if err := c.ws.WriteControl(websocket.PingMessage, nil, now.Add(writeTimeout)); err != nil {
		c.broken = true
		_ = c.ws.Close()
	}
}

// silenceOwed lines c's input up with the wall clock while the speaker
// sends nothing: it returns how many chunks of silence (at most 50) bring
// the input, with queued bytes not yet appended, up to now. When the input
// ran ahead instead, it moves start back so that the two agree again and
// returns 0.
func (c *conn) silenceOwed(queued, chunk int, now time.Time) int {
	total := c.appended + queued
	elapsed := now.Sub(c.start)
	if ahead := audio.BytesDuration(total) - elapsed; ahead > 0 {
		c.start = c.start.Add(-ahead)
		return 0
	}
	n := 0
	for n < 50 && audio.BytesDuration(total+(n+1)*chunk) <= elapsed {
		n++
	}
	return n
}

// holdClock stops c's input clock while the speaker has been silent longer
// than the top-up limit: the input stays where it is, and the clock is
// moved so that when speech resumes it is not owed the silence of the wait.
func (c *conn) holdClock(queued int, now time.Time) {
	c.start = now.Add(-audio.BytesDuration(c.appended + queued))
}

// capturedAt is the capture time of the speech at input position pos, or,
// where that is unknown, the wall time the input clock gives it.
func (c *conn) capturedAt(captured time.Time, pos int) time.Time {
	if captured.IsZero() {
		return c.start.Add(audio.BytesDuration(pos))
	}
	return captured
}

// close closes the socket once.
func (c *conn) close() {
	if c.closed {
		return
	}
	c.closed = true
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = c.ws.Close()
}

// connEvent is what a reader goroutine hands the run loop: a server event,
// or (closed) the end of the connection.
type connEvent struct {
	c      *conn
	ev     *serverEvent
	closed bool
	err    error
}

// dial opens a WebSocket to the endpoint of kind, authenticated with the
// key. Handshake failures come back as *engine.Error.
func (e *Engine) dial(ctx context.Context, kind string) (*websocket.Conn, error) {
	h := http.Header{}
	if e.azure && kind == KindInterpret { // Azure OpenAI's realtime endpoint takes an api-key header
		h.Set("api-key", e.opt.APIKey)
	} else {
		h.Set("Authorization", "Bearer "+e.opt.APIKey)
	}
	ws, resp, err := e.opt.Dialer.DialContext(ctx, e.endpoint(kind), h)
	if err != nil {
		return nil, e.handshakeError(resp, err)
	}
	ws.SetReadLimit(maxServerEvent)
	return ws, nil
}

// connect dials one connection, waits for session.created, sends the
// session.update and waits for session.updated. It returns the connection
// ready for audio; the caller starts its reader.
func (e *Engine) connect(ctx context.Context, kind string, id int, update func() clientEvent) (*conn, error) {
	ws, err := e.dial(ctx, kind)
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // unblock reads when ctx ends during setup
		defer wg.Done()
		select {
		case <-ctx.Done():
			_ = ws.Close()
		case <-stop:
		}
	}()
	c := &conn{id: id, ws: ws, opened: time.Now()}
	err = e.setup(c, update)
	close(stop)
	wg.Wait()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = ws.Close()
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Time{})
	return c, nil
}

func (e *Engine) setup(c *conn, update func() clientEvent) error {
	read := func(want string) (*serverEvent, error) {
		_ = c.ws.SetReadDeadline(time.Now().Add(setupTimeout))
		for {
			_, data, err := c.ws.ReadMessage()
			if err != nil {
				return nil, &engine.Error{Code: "connection_lost", Message: e.scrub(fmt.Sprintf("while waiting for %s: %v", want, err))}
			}
			var ev serverEvent
			if json.Unmarshal(data, &ev) != nil {
				continue
			}
			switch ev.Type {
			case want:
				return &ev, nil
			case "error":
				if te := e.classify(ev.Error); te != nil {
					return nil, te
				}
				code := "invalid_session"
				if ev.Error != nil && ev.Error.Code != "" {
					code = ev.Error.Code
				}
				msg := "session refused"
				if ev.Error != nil {
					msg = e.scrub(ev.Error.Message)
				}
				return nil, &engine.Error{Code: code, Message: "configuring the session: " + msg, Permanent: true}
			}
		}
	}
	created, err := read("session.created")
	if err != nil {
		return err
	}
	c.expiresAt = c.opened.Add(60 * time.Minute)
	if created.Session != nil && created.Session.ExpiresAt > 0 {
		c.expiresAt = time.Unix(created.Session.ExpiresAt, 0)
	}
	c.send(update())
	if c.broken {
		return &engine.Error{Code: "connection_lost", Message: "the connection closed while configuring the session"}
	}
	_, err = read("session.updated")
	return err
}

// startReader forwards c's server events to out until the connection ends
// or stop closes; the last event it sends is the close.
func startReader(wg *sync.WaitGroup, c *conn, out chan<- connEvent, stop <-chan struct{}, log *slog.Logger) {
	wg.Add(1)
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(readIdle)) })
	go func() {
		defer wg.Done()
		for {
			_ = c.ws.SetReadDeadline(time.Now().Add(readIdle))
			_, data, err := c.ws.ReadMessage()
			if err != nil {
				select {
				case out <- connEvent{c: c, closed: true, err: err}:
				case <-stop:
				}
				return
			}
			ev := new(serverEvent)
			if err := json.Unmarshal(data, ev); err != nil {
				log.Warn("unreadable server event", "conn", c.id, "err", err)
				continue
			}
			select {
			case out <- connEvent{c: c, ev: ev}:
			case <-stop:
				return
			}
		}
	}()
}
