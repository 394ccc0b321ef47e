package openai

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/translate/engine"
)

// Every client event marshals to the JSON the Realtime API documents (and
// that this package sent when its events were maps): the same fields, the
// same values, nothing more.
func TestClientEventsJSON(t *testing.T) {
	e, err := New(Options{APIKey: "sk-test"})
	if err != nil {
		t.Fatal(err)
	}
	ch := engine.Channel{Source: "en", Target: "nl", Voice: "cedar", Mode: room.ModeInterpret}
	cases := []struct {
		ev   clientEvent
		want string
	}{
		{translationUpdate(e, engine.Channel{Source: "en", Target: "pt-BR"}),
			`{"type":"session.update","session":{"audio":{"input":{"transcription":{"model":"gpt-4o-mini-transcribe"}},"output":{"language":"pt"}}}}`},
		{realtimeUpdate(e, ch, "be an interpreter"),
			`{"type":"session.update","session":{"type":"realtime","instructions":"be an interpreter","output_modalities":["audio"],
			  "audio":{"input":{"format":{"type":"audio/pcm","rate":24000},"transcription":{"model":"gpt-4o-mini-transcribe"},
			    "turn_detection":{"type":"server_vad","create_response":false,"interrupt_response":false,"silence_duration_ms":500}},
			  "output":{"format":{"type":"audio/pcm","rate":24000},"voice":"cedar"}}}}`},
		{&translationAppend{Audio: "AAA="}, `{"type":"session.input_audio_buffer.append","audio":"AAA="}`},
		{&sessionClose{}, `{"type":"session.close"}`},
		{&bufferAppend{Audio: "AAA="}, `{"type":"input_audio_buffer.append","audio":"AAA="}`},
		{&bufferCommit{}, `{"type":"input_audio_buffer.commit"}`},
		{outOfBandResponse("translate this", "item_1"),
			`{"type":"response.create","response":{"conversation":"none","output_modalities":["audio"],"instructions":"translate this",
			  "input":[{"type":"item_reference","id":"item_1"}]}}`},
		{audioItem("bci_1", []byte{0, 0}),
			`{"type":"conversation.item.create","item":{"id":"bci_1","type":"message","role":"user","content":[{"type":"input_audio","audio":"AAA="}]}}`},
		{&itemDelete{ItemID: "item_1"}, `{"type":"conversation.item.delete","item_id":"item_1"}`},
	}
	for _, c := range cases {
		h := c.ev.header()
		h.Type, h.EventID = c.ev.eventType(), "bc_1_1"
		data, err := json.Marshal(c.ev)
		if err != nil {
			t.Fatal(err)
		}
		var got, want map[string]any
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(c.want), &want); err != nil {
			t.Fatalf("%s: %v", c.want, err)
		}
		want["event_id"] = "bc_1_1"
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s marshals to\n%s\nwant\n%s", c.ev.eventType(), data, c.want)
		}
	}
}
