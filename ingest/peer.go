package ingest

import (
	"encoding/json"
	"sync"

	"github.com/babelcast/babelcast/internal/metrics"
)

// closeReq is why a connection ends.
type closeReq struct {
	code    int
	errCode string
	message string
	quiet   bool // the connection is gone or the peer closed: write nothing
}

// peer is what a speaker's and an interpreter's connection share: the
// bounded queue of text messages for the writer, and how the connection's
// goroutines agree that it ends and why. The first close request wins;
// closing is closed then, and the writer sends the error (unless the code
// is 1000) and the close frame. Both read through readLoop (read.go).
type peer struct {
	out        chan []byte   // text messages for the writer; full → dropped
	closing    chan struct{} // closed by the first close request
	readerDone chan struct{}
	dropped    string // the metric label of a message dropped from a full out

	closeOnce sync.Once
	reqMu     sync.Mutex
	req       closeReq // set once
}

func newPeer(queue int, dropped string) peer {
	return peer{out: make(chan []byte, queue), closing: make(chan struct{}), readerDone: make(chan struct{}), dropped: dropped}
}

// close asks for the connection to end with code, and an error message
// unless code is 1000. Only the first request counts.
func (c *peer) close(code int, errCode, message string) {
	c.shut(closeReq{code: code, errCode: errCode, message: message})
}

func (c *peer) shut(r closeReq) {
	c.closeOnce.Do(func() {
		c.reqMu.Lock()
		c.req = r
		c.reqMu.Unlock()
		close(c.closing)
	})
}

func (c *peer) closeReq() closeReq {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	return c.req
}

func (c *peer) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// send queues a text message. When the peer cannot take our messages,
// level and status updates are dropped: newer ones follow.
func (c *peer) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	select {
	case c.out <- b:
	default:
		metrics.FramesDropped.WithLabelValues(roleName, c.dropped).Inc()
	}
}
