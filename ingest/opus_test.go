package ingest

import (
	"math"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/internal/subject"
)

// opusMessages encodes pcm (24 kHz) as 20 ms packets, five to a message
// as the Go client and the speaker page send them.
func opusMessages(t *testing.T, pcm []int16) [][]byte {
	t.Helper()
	enc, err := opus.NewEncoder(0)
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	var msg []byte
	for i := 0; i+opus.FrameSamples <= len(pcm); i += opus.FrameSamples {
		p, err := enc.Encode(nil, pcm[i:i+opus.FrameSamples])
		if err != nil {
			t.Fatal(err)
		}
		msg = opus.AppendFramed(msg, p)
		if (i/opus.FrameSamples)%5 == 4 {
			msgs, msg = append(msgs, msg), nil
		}
	}
	if msg != nil {
		msgs = append(msgs, msg)
	}
	return msgs
}

// A speaker that says "codec":"opus" is decoded: every packet's 20 ms
// reach the room, at the tone's level.
func TestOpusSpeakerIsDecoded(t *testing.T) {
	e := newEnv(t, nil)
	sub := e.subscribe()
	c := e.speak(e.http)
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","codec":"opus"}`)); err != nil {
		t.Fatal(err)
	}
	if m := next(t, c, "ready"); m.SampleRate != 48000 {
		t.Fatalf("ready %+v, want the Opus clock (48000)", m)
	}
	for _, m := range opusMessages(t, tone(440, audio.Rate, 1, 16000)) {
		if err := c.WriteMessage(websocket.BinaryMessage, m); err != nil {
			t.Fatal(err)
		}
	}
	if lv := next(t, c, "level"); math.Abs(lv.RMSDB+9.2) > 1.5 {
		t.Errorf("level %+v, want rms about -9.2 dBFS", lv)
	}
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if _, code := readUntilClose(t, c); code != websocket.CloseNormalClosure {
		t.Fatalf("close %d", code)
	}
	var got []int16
	deadline := time.After(10 * time.Second)
	for len(got) < audio.Rate {
		select {
		case m := <-sub:
			got = append(got, audio.Samples(m.Data)...)
		case <-deadline:
			t.Fatalf("got %d samples, want %d", len(got), audio.Rate)
		}
	}
	e.expectNothingPublished(sub)
	if len(got) != audio.Rate {
		t.Fatalf("published %d samples for 1 s of Opus, want %d", len(got), audio.Rate)
	}
	if rms, _ := audio.Level(got[2400:21600]); math.Abs(rms-(20*math.Log10(16000/32768.)-3)) > 1 {
		t.Errorf("rms %.1f dBFS after Opus", rms)
	}
}

// Opus that does not decode, or is not framed as the protocol says, is
// bad_audio (1007) like odd-length PCM: nothing of it is published, and
// the room's other mic goes on.
func TestBadOpusCloses(t *testing.T) {
	e := newEnv(t, nil)
	good := opusMessages(t, tone(440, audio.Rate, 0.1, 8000))[0]
	cases := []struct {
		name string
		msg  []byte
	}{
		{"length past the end", append([]byte{0, 200}, good[2:40]...)},
		{"stray byte", append(append([]byte{}, good...), 7)},
		{"empty packet", []byte{0, 0}},
		{"corrupt packet", append(append([]byte{}, good...), 0, 2, 0x03, 0x00)}, // code 3 with 0 frames
	}
	other := make(chan *nats.Msg, 1024)
	osub, err := e.bus.Conn.ChanSubscribe(subject.Mic("keynote", "panel-2"), other)
	if err != nil {
		t.Fatal(err)
	}
	defer osub.Unsubscribe()
	panel := e.speak(e.http)
	panel.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","mic":"panel-2"}`))
	next(t, panel, "ready")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub := e.subscribe()
			c := e.speak(e.http)
			c.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","codec":"opus"}`))
			next(t, c, "ready")
			c.WriteMessage(websocket.BinaryMessage, tc.msg)
			msgs, code := readUntilClose(t, c)
			if code != 1007 {
				t.Errorf("close %d, want 1007", code)
			}
			if er := lastError(msgs); er.Code != "bad_audio" || er.Message == "" {
				t.Errorf("error %+v, want bad_audio", er)
			}
			e.expectNothingPublished(sub)
			// The other mic is still on air.
			if err := panel.WriteMessage(websocket.BinaryMessage, make([]byte, 4800)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-other:
			case <-time.After(5 * time.Second):
				t.Fatal("the other mic's audio was not published")
			}
		})
	}
}

func TestUnknownCodecIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	c := e.speak(e.http)
	c.WriteMessage(websocket.TextMessage, []byte(`{"type":"start","codec":"flac"}`))
	msgs, code := readUntilClose(t, c)
	if er := lastError(msgs); code != 1008 || er.Code != "bad_message" {
		t.Errorf("close %d, error %+v", code, er)
	}
}
