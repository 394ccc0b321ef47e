package fanout

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/subject"
)

// rawFrame is one WebSocket frame as it came off the wire.
type rawFrame struct {
	op      byte
	payload []byte
}

// rawListener is a listener WebSocket read frame by frame, below any
// WebSocket library: it sees what a library would hide, such as a data
// frame after the close frame.
type rawListener struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialRawFrames upgrades path with a receive buffer of readBuffer bytes.
func (e *env) dialRawFrames(t *testing.T, path string, readBuffer int) *rawListener {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, readBuffer)
		})
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(e.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req, _ := http.NewRequest("GET", e.http.URL+path, nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return &rawListener{conn: conn, r: r}
}

// next reads one frame (server frames are unmasked).
func (c *rawListener) next() (rawFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return rawFrame{}, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return rawFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return rawFrame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(c.r, p)
	return rawFrame{op: h[0] & 0x0f, payload: p}, err
}

// sendClose sends a masked close frame with code 1000, as a browser does
// when a page closes its socket.
func (c *rawListener) sendClose() error {
	mask := [4]byte{1, 2, 3, 4}
	payload := []byte{0x03, 0xe8}
	f := []byte{0x88, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
	for i, b := range payload {
		f = append(f, b^mask[i%4])
	}
	_, err := c.conn.Write(f)
	return err
}

// A client closing its socket while audio streams to it gets a close frame
// and nothing after it: a data frame after the close breaks the protocol
// (browsers report "Data frame received after close" and fail the socket).
// The client here stops reading until the server's writer is stuck in a
// write with more queued behind it, then closes: the close frame must come
// after the writer's last batch, from the writer, not between its batches.
func TestNoDataFrameAfterClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(o *Options) { o.SendBuffer, o.QueueAudio = 4096, 2*time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // twice real time: the channel always has audio to play
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				e.publishAudio(subject.Out("keynote", "es"), seq%30000+1, 4800)
			}
		}
	}()
	for i := range 3 {
		c := e.dialRawFrames(t, "/api/v1/rooms/keynote/listen?lang=es", 4096)
		_ = c.conn.SetDeadline(time.Now().Add(20 * time.Second))
		for audio := 0; audio < 1; { // the hello, then audio is flowing
			f, err := c.next()
			if err != nil {
				t.Fatalf("connection %d before the close: %v", i, err)
			}
			if f.op == 2 {
				audio++
			}
		}
		// Not reading: the kernel buffers fill, the writer blocks, the
		// queue fills behind it and drops its oldest.
		waitFor(t, "a backlog in the listener's queue", func() bool {
			ls := e.srv.hub.channelListeners("keynote", "es")
			return len(ls) == 1 && ls[0].droppedFrames() > 0
		})
		if err := c.sendClose(); err != nil {
			t.Fatal(err)
		}
		closed := false
		for {
			f, err := c.next()
			if err != nil {
				break // the server hung up
			}
			switch {
			case f.op == 8:
				if closed {
					t.Errorf("connection %d: a second close frame", i)
				}
				closed = true
				if len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != 1000 {
					t.Errorf("connection %d: close frame %x, want code 1000 echoed", i, f.payload)
				}
			case closed && f.op < 8:
				t.Fatalf("connection %d: data frame (opcode %d, %d bytes) after the close frame", i, f.op, len(f.payload))
			}
		}
		if !closed {
			t.Errorf("connection %d: no close frame in answer to the client's", i)
		}
		c.conn.Close()
		waitFor(t, "the listener to leave", func() bool { return len(e.srv.hub.channelListeners("keynote", "es")) == 0 })
	}
}
