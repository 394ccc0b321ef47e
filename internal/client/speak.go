package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/wire"
)

// SampleReader is a source of mono PCM samples, such as *audio.Source.
type SampleReader interface {
	Read(p []int16) (int, error)
}

// SpeakOptions say what to stream where.
type SpeakOptions struct {
	// Server is the base URL: http(s)://host[:port][/prefix] or ws(s)://….
	Server string
	Room   string
	Key    string // the room's speaker key
	// Source gives the audio: mono at SampleRate (24 kHz when zero), as
	// *audio.Source does.
	Source     SampleReader
	SampleRate int
	// Mic, Name and Language say which mic of the room this is (default
	// "main"), who speaks and in what language (default the room's
	// source language).
	Mic, Name, Language string
	// Log receives progress lines (ready, level, status, errors); nil
	// discards them.
	Log io.Writer
	// Realtime paces the audio at real time against the wall clock (the
	// CLI's default); otherwise it goes as fast as the connection takes it.
	Realtime bool
	// FrameDuration is how much audio each message carries (default 100 ms).
	FrameDuration time.Duration
	// Codec is what goes on the wire: wire.CodecPCM (the default: PCM16LE
	// at SampleRate) or wire.CodecOpus (20 ms packets at 32 kbit/s, a
	// twelfth of the bandwidth; the CLI's default).
	Codec string
	// OnMessage, if set, sees every text message from the server.
	OnMessage func(typ string, raw []byte)
	// Dialer overrides websocket.DefaultDialer.
	Dialer *websocket.Dialer
}

const (
	writeTimeout = 10 * time.Second
	closeTimeout = 5 * time.Second  // for the server's close reply
	readyTimeout = 10 * time.Second // for the server's "ready"
	levelEvery   = 5 * time.Second  // level lines in the log
)

// Speak streams o.Source to the room's speaker WebSocket until the source
// ends (then it closes with 1000 and waits for the server's reply), ctx
// ends (returns ctx.Err()), or the server closes the session (returns a
// *CloseError, e.g. code 4001 when another connection took over; nil when
// the server closed it normally, as when an audience question ends). A
// refused handshake is a *HandshakeError carrying the server's message.
func Speak(ctx context.Context, o SpeakOptions) error {
	if o.Room == "" || o.Key == "" {
		return errors.New("speak: a room and its speaker key are required")
	}
	if o.Source == nil {
		return errors.New("speak: no audio source")
	}
	if o.SampleRate == 0 {
		o.SampleRate = audio.Rate
	}
	if err := audio.CheckRate(o.SampleRate); err != nil {
		return fmt.Errorf("speak: %w", err)
	}
	if o.FrameDuration <= 0 {
		o.FrameDuration = 100 * time.Millisecond
	}
	dialer := o.Dialer
	if dialer == nil {
		dialer = websocket.DefaultDialer
	}
	u, err := endpoint(o.Server, roomPath(o.Room, "/speak"), nil)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+o.Key)
	conn, resp, err := dialer.DialContext(ctx, u, h)
	if err != nil {
		return dialError(err, resp)
	}
	defer conn.Close()

	var packer *opusPacker
	st := wire.Start{Type: wire.TypeStart, SampleRate: &o.SampleRate, Name: o.Name, Language: o.Language}
	switch o.Codec {
	case "", wire.CodecPCM:
	case wire.CodecOpus:
		if packer, err = newOpusPacker(o.SampleRate); err != nil {
			return fmt.Errorf("speak: %w", err)
		}
		st.Codec, st.SampleRate = wire.CodecOpus, nil
	default:
		return fmt.Errorf("speak: codec %q: want %s or %s", o.Codec, wire.CodecPCM, wire.CodecOpus)
	}
	if o.Mic != "" {
		st.Mic = &o.Mic
	}
	start, _ := json.Marshal(st)
	_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := conn.WriteMessage(websocket.TextMessage, start); err != nil {
		return fmt.Errorf("speak: send start: %w", err)
	}

	var closing sync.Once
	closingCh := make(chan struct{})
	serverDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() { serverDone <- speakReader(conn, o, closingCh, ready) }()
	// hangUp starts the close handshake once.
	hangUp := func() {
		closing.Do(func() {
			close(closingCh)
			_ = conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(wire.CloseNormal, ""), time.Now().Add(writeTimeout))
		})
	}
	// awaitServer waits for the reader after hangUp.
	awaitServer := func() error {
		select {
		case err := <-serverDone:
			return err
		case <-time.After(closeTimeout):
			return errors.New("speak: the server did not answer the close")
		}
	}

	// quit hangs up, waits for the server's answer and returns err.
	quit := func(err error) error {
		hangUp()
		_ = awaitServer()
		return err
	}

	// Audio goes only once the server has accepted the start: a refusal
	// is reported before any of the source is used up, and a short file
	// is not over before the session began.
	select {
	case <-ready:
	case err := <-serverDone:
		return serverEnded(err)
	case <-ctx.Done():
		return quit(ctx.Err())
	case <-time.After(readyTimeout):
		return quit(errors.New("speak: the server did not answer the start message"))
	}

	// send writes one binary message (none when msg is empty: Opus short
	// of a packet yet).
	send := func(msg []byte) error {
		if len(msg) == 0 {
			return nil
		}
		_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := conn.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			select {
			case serr := <-serverDone: // the server said why
				return serverEnded(serr)
			case <-time.After(time.Second):
				return fmt.Errorf("speak: send audio: %w", err)
			}
		}
		return nil
	}
	frame := max(1, int(int64(o.SampleRate)*int64(o.FrameDuration)/int64(time.Second)))
	buf := make([]int16, frame)
	pcm := make([]byte, 0, 2*frame)
	began := time.Now()
	var sent int64
	var timer *time.Timer
	for {
		n, rerr := readFull(o.Source, buf)
		if n > 0 {
			if o.Realtime {
				// Frame k goes at began + its start time: no drift, however
				// long the talk.
				due := began.Add(time.Duration(sent) * time.Second / time.Duration(o.SampleRate))
				if wait := time.Until(due); wait > 0 {
					if timer == nil {
						timer = time.NewTimer(wait)
					} else {
						timer.Reset(wait)
					}
					select {
					case <-timer.C:
					case <-ctx.Done():
						return quit(ctx.Err())
					case err := <-serverDone:
						return serverEnded(err)
					}
				}
			}
			if packer != nil {
				if pcm, err = packer.pack(pcm[:0], buf[:n]); err != nil {
					return quit(fmt.Errorf("speak: %w", err))
				}
			} else {
				pcm = audio.AppendBytes(pcm[:0], buf[:n])
			}
			if err := send(pcm); err != nil {
				return err
			}
			sent += int64(n)
		}
		select {
		case err := <-serverDone:
			return serverEnded(err)
		case <-ctx.Done():
			return quit(ctx.Err())
		default:
		}
		if errors.Is(rerr, io.EOF) {
			if packer != nil { // the last packet, padded
				if pcm, err = packer.flush(pcm[:0]); err != nil {
					return quit(fmt.Errorf("speak: %w", err))
				}
				if err := send(pcm); err != nil {
					return err
				}
			}
			break
		}
		if rerr != nil {
			return quit(fmt.Errorf("speak: read audio: %w", rerr))
		}
	}
	logf(o.Log, "done: sent %.1f s of audio", float64(sent)/float64(o.SampleRate))
	hangUp()
	return awaitServer()
}

// serverEnded turns the reader's result, when the server ended the session
// before we did, into Speak's error: nil when it closed normally (1000: an
// audience question the moderators ended, say), else why.
func serverEnded(err error) error { return err }

// readFull fills p unless the source ends or fails first.
func readFull(r SampleReader, p []int16) (int, error) {
	n := 0
	for n < len(p) {
		k, err := r.Read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
		if k == 0 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

// speakReader reads the server's messages until the connection ends: nil
// for a normal close, a *CloseError for any other close code, or the
// network error. It closes ready at the server's "ready".
func speakReader(conn *websocket.Conn, o SpeakOptions, closing <-chan struct{}, ready chan<- struct{}) error {
	isReady := false
	sm := serverMessages{log: o.Log, onMessage: o.OnMessage}
	var lastStatus string
	var lastLevel time.Time
	for {
		mt, b, err := conn.ReadMessage()
		if err != nil {
			if closed, err := sm.closed(err); closed {
				return err
			}
			select {
			case <-closing:
				return nil // we hung up; the server may just drop the line
			default:
			}
			return fmt.Errorf("speak: connection lost: %w", err)
		}
		if mt != websocket.TextMessage {
			continue
		}
		typ, ok := sm.text(b)
		if !ok {
			continue
		}
		switch typ {
		case wire.TypeReady:
			m, ok := decode[wire.Ready](b)
			if !ok {
				continue
			}
			logf(o.Log, "ready: speaking in room %s (sending %d Hz)", m.Room, m.SampleRate)
			if !isReady {
				isReady = true
				close(ready)
			}
		case wire.TypeLevel:
			m, ok := decode[wire.Level](b)
			if ok && time.Since(lastLevel) >= levelEvery {
				lastLevel = time.Now()
				logf(o.Log, "level: %.1f dBFS rms, %.1f dBFS peak", m.RMSDB, m.PeakDB)
			}
		case wire.TypeStatus:
			m, ok := decode[wire.Status](b)
			if !ok {
				continue
			}
			var parts []string
			for _, l := range m.Languages {
				p := fmt.Sprintf("%s %s (%d)", l.Code, l.State, l.Listeners)
				if l.Error != "" {
					p += " " + l.Error
				}
				parts = append(parts, p)
			}
			s := fmt.Sprintf("status: floor %d listener(s); %s", m.FloorListeners, strings.Join(parts, ", "))
			if s != lastStatus {
				lastStatus = s
				logf(o.Log, "%s", s)
			}
		}
	}
}
