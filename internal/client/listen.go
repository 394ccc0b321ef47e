package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/access"
	"github.com/babelcast/babelcast/internal/wire"
)

// ListenOptions say which channel to record where.
type ListenOptions struct {
	// Server is the base URL: http(s)://host[:port][/prefix] or ws(s)://….
	Server   string
	Room     string
	Lang     string // the channel: a language of the room, or "floor" for the floor itself
	Passcode string
	// NoPassthrough asks for interpretations only, never the original
	// (a participant who must not hear themselves back).
	NoPassthrough bool
	// Out receives the recording as WAV (PCM16 mono 24 kHz) or, when
	// Format is "ogg", Ogg/Opus. A WAV's header gets the real sizes at the
	// end when Out is an io.WriteSeeker (a file); otherwise it keeps stream
	// sizes. OutPath, used when Out is nil, names a file to create (its
	// extension, .ogg or .wav, gives the format when Format is empty).
	// With neither, audio goes only to OnAudio. A recording keeps the
	// channel's timing: silence where nobody spoke, and where the
	// connection was down.
	Out     io.Writer
	OutPath string
	Format  string // "wav" (default) or "ogg"
	// Codec is what the server sends: wire.CodecPCM (default) or
	// wire.CodecOpus (a twelfth of the bandwidth). An Ogg recording is
	// always Opus.
	Codec string
	// Captions gets one line per final caption.
	Captions io.Writer
	// Duration stops the recording after this long; 0 records until ctx
	// ends or the server ends the stream.
	Duration time.Duration
	// OnAudio, if set, sees every audio message (PCM16LE mono 24 kHz,
	// decoded when Opus) as the server sent it: not the silence a
	// recording fills gaps with, so a caller can time what arrived.
	OnAudio func(pcm []byte)
	// OnMessage, if set, sees every text message.
	OnMessage func(typ string, raw []byte)
	// Log receives connection events; nil discards them.
	Log io.Writer
	// Backoff bounds the wait between reconnections (defaults 500 ms, 10 s).
	MinBackoff, MaxBackoff time.Duration
	Dialer                 *websocket.Dialer
}

const (
	listenReadTimeout = 45 * time.Second // silence before we call a connection dead
	listenPing        = 15 * time.Second
)

// fatal marks an error that reconnecting cannot fix.
type fatal struct{ error }

func (f fatal) Unwrap() error { return f.error }

// Listen records a channel until ctx ends or Duration passes (both return
// nil: they are how a recording is meant to stop), or the server ends the
// stream with a normal close (nil). It reconnects with backoff when the
// connection drops or the server restarts (1001) or drops a slow listener
// (4408), but not when the handshake is refused with a 4xx (a
// *HandshakeError), the room is deleted or its passcode changed (a
// *CloseError with code 4404 or 4403).
// The WAV is finished properly in every case.
func Listen(ctx context.Context, o ListenOptions) (err error) {
	if o.Room == "" || o.Lang == "" {
		return errors.New("listen: a room and a language are required")
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(o.MinBackoff, 10*time.Second)
	}
	if o.Format == "" {
		switch ext := strings.ToLower(filepath.Ext(o.OutPath)); ext {
		case "", ".wav":
			o.Format = "wav"
		case ".ogg":
			o.Format = "ogg"
		default:
			// Not a WAV under another name: a player trusting the name
			// would refuse it.
			return fmt.Errorf("listen: %s: a recording is .ogg (Ogg/Opus) or .wav (PCM), not %s", o.OutPath, ext)
		}
	}
	switch {
	case o.Format != "wav" && o.Format != "ogg":
		return fmt.Errorf("listen: format %q: want wav or ogg", o.Format)
	case o.Format == "ogg":
		o.Codec = wire.CodecOpus
	case o.Codec == "":
		o.Codec = wire.CodecPCM
	case o.Codec != wire.CodecPCM && o.Codec != wire.CodecOpus:
		return fmt.Errorf("listen: codec %q: want %s or %s", o.Codec, wire.CodecPCM, wire.CodecOpus)
	}
	q := url.Values{"lang": {o.Lang}}
	if o.NoPassthrough {
		q.Set("passthrough", "false")
	}
	if o.Codec == wire.CodecOpus {
		q.Set("codec", wire.CodecOpus)
	}
	u, err := endpoint(o.Server, roomPath(o.Room, "/listen"), q)
	if err != nil {
		return err
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}

	out := o.Out
	if out == nil && o.OutPath != "" {
		f, err := os.Create(o.OutPath)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("listen: %w", cerr)
			}
		}()
		out = f
	}
	rec, err := newRecorder(out, o.Format, o.Codec == wire.CodecOpus, o.Room+" "+o.Lang, o.OnAudio)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer func() {
		if cerr := rec.finish(time.Now()); cerr != nil && err == nil {
			err = fmt.Errorf("listen: finish the recording: %w", cerr)
		}
	}()

	backoff := o.MinBackoff
	for {
		began := time.Now()
		err := listenOnce(ctx, o, u, rec)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			logf(o.Log, "the server ended the stream")
			return nil
		}
		var he *HandshakeError
		var ce *CloseError
		var f fatal
		switch {
		case errors.As(err, &he) && he.Permanent():
			return err
		case errors.As(err, &ce) && (ce.Code == wire.ClosePasscodeChanged || ce.Code == wire.CloseRoomGone || ce.Code == wire.CloseBadMessage):
			return err
		case errors.As(err, &f):
			return f.error
		}
		if time.Since(began) > 2*o.MaxBackoff {
			backoff = o.MinBackoff // it had been working for a while
		}
		logf(o.Log, "%v; reconnecting in %v", err, backoff.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

// listenOnce runs one connection: nil when the server closed normally or
// ctx ended, else why it ended.
func listenOnce(ctx context.Context, o ListenOptions, u string, rec *recorder) error {
	dialer := *websocket.DefaultDialer
	if o.Dialer != nil {
		dialer = *o.Dialer
	}
	// The passcode goes in the subprotocol, as the pages send it: out of
	// the URL, which load balancers log.
	dialer.Subprotocols = []string{access.Protocol}
	if o.Passcode != "" {
		dialer.Subprotocols = append(dialer.Subprotocols, access.CredentialProtocol(access.KindPasscode, o.Passcode))
	}
	conn, resp, err := dialer.DialContext(ctx, u, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return dialError(err, resp)
	}
	defer conn.Close()
	done := make(chan struct{})
	defer close(done)

	// On ctx end: say goodbye, and don't wait long for the reply.
	stop := context.AfterFunc(ctx, func() {
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(wire.CloseNormal, ""), time.Now().Add(time.Second))
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	})
	defer stop()
	alive := func() { _ = conn.SetReadDeadline(time.Now().Add(listenReadTimeout)) }
	alive()
	conn.SetPongHandler(func(string) error { alive(); return nil })
	go func() {
		t := time.NewTicker(listenPing)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
			}
		}
	}()

	sm := serverMessages{log: o.Log, onMessage: o.OnMessage}
	for {
		mt, b, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if closed, err := sm.closed(err); closed {
				return err
			}
			return fmt.Errorf("connection lost: %w", err)
		}
		if ctx.Err() == nil {
			alive()
		}
		switch mt {
		case websocket.BinaryMessage:
			if err := rec.message(b, time.Now()); err != nil {
				return fatal{err}
			}
		case websocket.TextMessage:
			typ, ok := sm.text(b)
			if !ok {
				continue
			}
			switch typ {
			case wire.TypeHello:
				rec.hello(time.Now())
				if m, ok := decode[wire.Hello](b); ok {
					logf(o.Log, "listening to room %s in %s", o.Room, m.Lang)
				}
			case wire.TypeState:
				m, ok := decode[wire.State](b)
				switch {
				case !ok:
				case m.Message != "":
					logf(o.Log, "channel %s: %s (%s)", m.Lang, m.State, m.Message)
				default:
					logf(o.Log, "channel %s: %s", m.Lang, m.State)
				}
			case wire.TypeCaption:
				if m, ok := decode[wire.Caption](b); ok && m.Final && o.Captions != nil {
					line := strings.Join(strings.Fields(m.Text), " ") // one line, whatever it holds
					if _, err := fmt.Fprintln(o.Captions, line); err != nil {
						return fatal{fmt.Errorf("write captions: %w", err)}
					}
				}
			}
		}
	}
}
