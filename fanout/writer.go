package fanout

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/wire"
)

// A writer takes at most this much from a listener's queue at once: frames
// in flight are beyond the queue's drop policy, so keep it small.
const (
	maxBatchFrames = 16
	maxBatchBytes  = 128 << 10
)

// wsHeader is the header of an unmasked, unfragmented WebSocket frame
// (server to client) of n payload bytes.
func wsHeader(opcode byte, n int) []byte {
	switch {
	case n < 126:
		return []byte{0x80 | opcode, byte(n)}
	case n < 1<<16:
		return []byte{0x80 | opcode, 126, byte(n >> 8), byte(n)}
	default:
		h := make([]byte, 10)
		h[0], h[1] = 0x80|opcode, 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
		return h
	}
}

// WebSocket opcodes of the frames we build.
const (
	opText   = websocket.TextMessage
	opBinary = websocket.BinaryMessage
)

// batchWriter writes frames to a listener's connection, as many as are
// queued in one system call (writev): a listener that fell behind catches up
// without paying a syscall per frame.
//
// WebSocket data frames are written here, bypassing gorilla's writer, while
// gorilla may write control frames (pongs, close replies) from the reader
// goroutine. That is safe because each batch goes out in ONE Write/writev
// call, and net.Conn serializes whole calls: frames never interleave.
type batchWriter struct {
	w        io.Writer
	vec      bool // w is a *net.TCPConn: writev is one atomic call
	ws       bool // frame as WebSocket messages; raw bytes otherwise (WAV)
	deadline func(time.Time) error
	flush    func() error // after each batch; nil when not needed
	timeout  time.Duration

	bufs  [][]byte
	joint []byte
	n     int // frames in the batch
	bytes int
}

func newBatchWriter(w io.Writer, ws bool, timeout time.Duration) *batchWriter {
	bw := &batchWriter{w: w, ws: ws, timeout: timeout}
	if nc, ok := w.(net.Conn); ok {
		bw.deadline = nc.SetWriteDeadline
		_, bw.vec = nc.(*net.TCPConn)
	}
	return bw
}

func (bw *batchWriter) full() bool { return bw.n >= maxBatchFrames || bw.bytes >= maxBatchBytes }

func (bw *batchWriter) add(f *frame) {
	if bw.ws {
		bw.bufs = append(bw.bufs, f.hdr)
	}
	bw.bufs = append(bw.bufs, f.data)
	bw.n++
	bw.bytes += len(f.data)
}

// write sends the batch.
func (bw *batchWriter) write() error {
	if bw.n == 0 {
		return nil
	}
	if bw.deadline != nil {
		_ = bw.deadline(time.Now().Add(bw.timeout))
	}
	var err error
	if bw.vec {
		b := net.Buffers(bw.bufs)
		_, err = b.WriteTo(bw.w)
	} else {
		// One Write call for the whole batch (see the type comment).
		bw.joint = bw.joint[:0]
		for _, b := range bw.bufs {
			bw.joint = append(bw.joint, b...)
		}
		_, err = bw.w.Write(bw.joint)
		if cap(bw.joint) > 2*maxBatchBytes {
			bw.joint = nil
		}
	}
	clear(bw.bufs)
	bw.bufs, bw.n, bw.bytes = bw.bufs[:0], 0, 0
	if err == nil && bw.flush != nil {
		err = bw.flush()
	}
	return err
}

// pump writes l's queue to its connection until the connection ends or l
// is closed. ws is the WebSocket (nil for a WAV stream): it gets pings,
// delay messages and close frames. readDone closes when the client has
// gone.
func (s *Server) pump(bw *batchWriter, ws *wsPeer, l *listener, readDone <-chan struct{}, log *slog.Logger) {
	var ping <-chan time.Time
	if ws != nil {
		t := time.NewTicker(s.o.PingInterval)
		defer t.Stop()
		ping = t.C
	}
	var (
		lag       time.Duration // of the last audio frame, when it was written
		lagKnown  bool          // audio with a capture time went out since the last delay message
		lastDelay = time.Now()
	)
	for {
		select {
		case <-l.wake:
		case <-readDone:
			if ws != nil {
				s.answerClose(ws)
			}
			return // the client left
		case <-ping:
			if err := ws.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.o.WriteTimeout)); err != nil {
				return
			}
			continue
		}
		for {
			var sent uint64
			var captured time.Time
			for !bw.full() {
				f, code, reason := l.next()
				if code != 0 {
					if code == wire.CloseTooSlow {
						log.Info("listener closed: too slow", "dropped_frames", l.droppedFrames())
					}
					if ws != nil {
						s.closeWS(ws, code, reason)
					}
					return
				}
				if f == nil {
					break
				}
				bw.add(f)
				if f.audio {
					sent++
					if !f.captured.IsZero() {
						captured = f.captured
					}
				}
			}
			if bw.n == 0 {
				break
			}
			if err := bw.write(); err != nil {
				return
			}
			if sent > 0 {
				framesOut.Add(float64(sent))
			}
			if !captured.IsZero() {
				lag, lagKnown = time.Since(captured), true
			}
		}
		if now := time.Now(); ws != nil && lagKnown && now.Sub(lastDelay) >= delayEvery {
			lastDelay, lagKnown = now, false // nothing more to say until more audio
			bw.add(textFrame(wire.Delay{Type: wire.TypeDelay, MS: lag.Milliseconds()}))
			if err := bw.write(); err != nil {
				return
			}
		}
	}
}
