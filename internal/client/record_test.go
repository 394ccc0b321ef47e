package client

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/test/signal"
)

// opusTicks sends d of the test signal as a fanout node does with
// ?codec=opus: 100 ms messages of five length-prefixed packets, at real
// time (the pace is the fake channel's, not a synchronization).
func opusTicks(t *testing.T, c *websocket.Conn, d time.Duration) {
	enc, err := opus.NewEncoder(0)
	if err != nil {
		t.Error(err)
		return
	}
	pcm := signal.Make(d)
	for i := 0; i+5*opus.FrameSamples <= len(pcm); i += 5 * opus.FrameSamples {
		var msg []byte
		for k := range 5 {
			p, _ := enc.Encode(nil, pcm[i+k*opus.FrameSamples:i+(k+1)*opus.FrameSamples])
			msg = opus.AppendFramed(msg, p)
		}
		if c.WriteMessage(websocket.BinaryMessage, msg) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pacedFrames sends n frames of 100 ms (samples all value) at real time.
func pacedFrames(c *websocket.Conn, n int, value int16) {
	for range n {
		if frames(c, 1, value) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// silentRun is the longest run of silence (|sample| < 600) in s.
func silentRun(s []int16) int {
	best, run := 0, 0
	for _, v := range s {
		if v > -600 && v < 600 {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// An Ogg recording keeps the channel's time across a lost connection:
// the time it was down is silence, so what follows stays in place.
func TestListenOggFillsTheTimeOffline(t *testing.T) {
	t.Parallel()
	f := newFakeFanout(t, func(c *websocket.Conn, attempt int, r *http.Request) {
		if r.URL.Query().Get("codec") != "opus" {
			t.Errorf("an Ogg recording asked for codec %q", r.URL.Query().Get("codec"))
		}
		c.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","room":"keynote","lang":"es","sample_rate":48000,"codec":"opus"}`))
		opusTicks(t, c, 500*time.Millisecond)
		if attempt == 1 {
			c.UnderlyingConn().Close() // dropped
			return
		}
		closeWith(c, websocket.CloseNormalClosure)
	})
	path := filepath.Join(t.TempDir(), "es.ogg")
	began := time.Now()
	err := Listen(context.Background(), ListenOptions{Server: f.srv.URL, Room: "keynote", Lang: "es", OutPath: path,
		MinBackoff: 1500 * time.Millisecond, MaxBackoff: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	pcm, err := signal.DecodeOggFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := audio.BytesDuration(2 * len(pcm))
	if got < took-300*time.Millisecond || got > took+300*time.Millisecond {
		t.Errorf("the recording lasts %v; the recording ran %v", got, took)
	}
	if gap := time.Duration(silentRun(pcm)) * time.Second / audio.Rate; gap < time.Second {
		t.Errorf("longest silence %v: the 1.5 s offline is not in the recording", gap)
	}
}

// A WAV recording over PCM (which carries no silence) fills the pauses
// of the channel with silence.
func TestListenWAVKeepsThePauses(t *testing.T) {
	t.Parallel()
	pause := 1200 * time.Millisecond
	f := newFakeFanout(t, func(c *websocket.Conn, _ int, _ *http.Request) {
		hello(c)
		pacedFrames(c, 5, 1000)
		time.Sleep(pause) // the fake channel's pause: nobody speaks
		pacedFrames(c, 5, 1000)
		closeWith(c, websocket.CloseNormalClosure)
	})
	path := filepath.Join(t.TempDir(), "es.wav")
	if err := Listen(context.Background(), ListenOptions{Server: f.srv.URL, Room: "keynote", Lang: "es", OutPath: path}); err != nil {
		t.Fatal(err)
	}
	pcm := readWAV(t, path)
	gap := time.Duration(silentRun(pcm)) * time.Second / audio.Rate
	if gap < pause-300*time.Millisecond || gap > pause+100*time.Millisecond {
		t.Errorf("the pause of %v is %v of silence in the recording", pause, gap)
	}
}
