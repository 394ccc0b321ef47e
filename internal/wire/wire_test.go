package wire

import (
	"encoding/json"
	"testing"

	"github.com/gorilla/websocket"
)

// Every message encodes to the shape the README documents, field for
// field: clients in the field read these names.
func TestMessageShapes(t *testing.T) {
	rate := 48000
	for _, tc := range []struct {
		msg  any
		want string
	}{
		{Start{Type: TypeStart, SampleRate: &rate}, `{"type":"start","sample_rate":48000}`},
		{Start{Type: TypeStart}, `{"type":"start"}`},
		{Start{Type: TypeStart, Codec: CodecOpus}, `{"type":"start","codec":"opus"}`},
		{Ready{Type: TypeReady, Room: "keynote", SampleRate: 48000, Mic: "guest", Name: "Ana", Language: "es"},
			`{"type":"ready","room":"keynote","sample_rate":48000,"mic":"guest","name":"Ana","language":"es"}`},
		{Level{Type: TypeLevel, RMSDB: -23.5, PeakDB: -6}, `{"type":"level","rms_db":-23.5,"peak_db":-6}`},
		{Status{Type: TypeStatus, Speaker: true, Languages: []LangStatus{{Code: "es", State: "active", Listeners: 3, Error: ""}}, FloorListeners: 2},
			`{"type":"status","speaker":true,"languages":[{"code":"es","state":"active","listeners":3,"error":""}],"floor_listeners":2,"mics":null}`},
		{Error{Type: TypeError, Code: CodeBadAudio, Message: "odd"}, `{"type":"error","code":"bad_audio","message":"odd"}`},
		{Hello{Type: TypeHello, Room: "keynote", Lang: "es", SampleRate: SampleRate}, `{"type":"hello","room":"keynote","lang":"es","sample_rate":24000,"floor":false,"passthrough":false}`},
		{Hello{Type: TypeHello, Room: "keynote", Lang: "es", SampleRate: OpusClockRate, Codec: CodecOpus, Passthrough: true}, `{"type":"hello","room":"keynote","lang":"es","sample_rate":48000,"codec":"opus","floor":false,"passthrough":true}`},
		{Caption{Type: TypeCaption, Lang: "es", Text: "Hola", Final: true, Segment: 7}, `{"type":"caption","lang":"es","text":"Hola","final":true,"segment":7}`},
		{Caption{Type: TypeCaption, Lang: "en", Text: "Hello", Segment: 1, Source: true}, `{"type":"caption","lang":"en","text":"Hello","final":false,"segment":1,"source":true}`},
		{State{Type: TypeState, Lang: "es", State: "error", Message: "no key", Speaker: true}, `{"type":"state","lang":"es","state":"error","message":"no key","speaker":true}`},
		{Delay{Type: TypeDelay, MS: 850}, `{"type":"delay","ms":850}`},
	} {
		b, err := json.Marshal(tc.msg)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%T:\n got %s\nwant %s", tc.msg, b, tc.want)
		}
	}
}

// The close codes are the numbers the README documents, and each one the
// server sends has a meaning to show people.
func TestCloseCodes(t *testing.T) {
	for code, want := range map[int]int{
		CloseNormal: 1000, CloseShutdown: 1001, CloseBadAudio: 1007, CloseBadMessage: 1008, CloseTooLarge: 1009,
		CloseReplaced: 4001, ClosePasscodeChanged: 4403, CloseRoomGone: 4404, CloseTooSlow: 4408,
	} {
		if code != want {
			t.Errorf("close code %d, want %d", code, want)
		}
		if code != CloseNormal && CloseMeaning(code) == "" {
			t.Errorf("close code %d has no meaning", code)
		}
	}
	if CloseMeaning(websocket.CloseAbnormalClosure) != "" {
		t.Error("1006 is never sent, so it has no meaning here")
	}
	if SampleRate != 24000 {
		t.Errorf("listener sample rate %d, want 24000", SampleRate)
	}
}
