package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/wire"
)

// messageHandler is what a connection's reader hands its messages to: a
// speaker or an interpreter.
type messageHandler interface {
	handleText(data []byte)
	handleAudio(data []byte, now time.Time)
	// badInput closes the connection over what the peer sent.
	badInput(code int, errCode, message string)
}

// readLoop reads conn until the connection ends, handing each message of
// up to limit bytes to h; a larger one closes the connection with 1009.
// After a close has begun it keeps reading (and ignoring) so the peer's
// close reply is seen.
func (c *peer) readLoop(conn *websocket.Conn, limit int, h messageHandler) {
	// Hard cap: a frame this big is refused by the library with 1009
	// before we see it. Up to it, we refuse with an explanation.
	conn.SetReadLimit(int64(4*limit) + 1024)
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	for {
		mt, r, err := conn.NextReader()
		if err != nil {
			c.readEnded(err)
			return
		}
		if !c.isClosing() {
			_ = conn.SetReadDeadline(time.Now().Add(pongWait))
		}
		data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
		if err != nil {
			c.readEnded(err)
			return
		}
		if c.isClosing() {
			continue
		}
		if len(data) > limit {
			h.badInput(wire.CloseTooLarge, wire.CodeFrameTooLarge,
				fmt.Sprintf("message larger than %d bytes; send audio in smaller frames (100 ms is ideal)", limit))
			continue
		}
		now := time.Now()
		switch mt {
		case websocket.TextMessage:
			h.handleText(data)
		case websocket.BinaryMessage:
			h.handleAudio(data, now)
		}
	}
}

// readEnded records why reading stopped, if no close was under way.
func (c *peer) readEnded(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		// The library has answered the peer's close frame already.
		c.shut(closeReq{code: ce.Code, quiet: true})
	case errors.Is(err, websocket.ErrReadLimit):
		metrics.Errors.WithLabelValues(roleName, "bad_input").Inc()
		c.shut(closeReq{code: wire.CloseTooLarge, errCode: wire.CodeFrameTooLarge, quiet: true})
	default:
		c.shut(closeReq{code: websocket.CloseAbnormalClosure, quiet: true})
	}
}

// decodeText reads a text message into m, or closes the connection as h's
// bad input (false) when it is not JSON.
func decodeText(h messageHandler, data []byte, m any) bool {
	if err := json.Unmarshal(data, m); err != nil {
		h.badInput(wire.CloseBadMessage, wire.CodeBadMessage, "bad text message: "+wire.DescribeJSON(err))
		return false
	}
	return true
}

// unknownType closes the connection as h's bad input over a text message
// of a type it does not take; sends says what it takes.
func unknownType(h messageHandler, typ, sends string) {
	if typ == "" {
		h.badInput(wire.CloseBadMessage, wire.CodeBadMessage, `text message has no "type"`)
		return
	}
	h.badInput(wire.CloseBadMessage, wire.CodeBadMessage, fmt.Sprintf("unknown message type %.40q; %s", typ, sends))
}

// decodeAudio reads a binary message's samples: Opus decoded by in where
// the start message said "codec":"opus", else PCM16LE. ok is false when
// there is nothing to take: the message was bad (the connection closes as
// h's bad input) or empty PCM.
func decodeAudio(h messageHandler, in *opusInput, data []byte) (samples []int16, ok bool) {
	if in != nil {
		s, err := in.decode(data)
		if err != nil {
			h.badInput(wire.CloseBadAudio, wire.CodeBadAudio, err.Error())
			return nil, false
		}
		return s, true
	}
	if len(data)%2 == 1 {
		h.badInput(wire.CloseBadAudio, wire.CodeBadAudio,
			fmt.Sprintf("binary message of %d bytes: PCM16LE needs an even number of bytes", len(data)))
		return nil, false
	}
	return audio.Samples(data), len(data) > 0
}
