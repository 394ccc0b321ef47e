package web

import (
	"bytes"
	"image"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/room"
)

func TestStatus(t *testing.T) {
	f := newFixture(t, "")
	f.createRoom(`{"id":"keynote","source_language":"en","languages":[{"code":"es"},{"code":"fr"},{"code":"de"}]}`)
	f.createRoom(`{"id":"keynote-2","source_language":"en","languages":[{"code":"es"}]}`)

	// Nothing reported yet: no speaker, no listeners, every channel idle.
	var st Status
	r := f.admin("GET", "/api/v1/rooms/keynote/status", "")
	mustStatus(t, r, 200)
	r.decode(t, &st)
	if st.Room != "keynote" || st.Speaker.Connected || st.Speaker.Since != nil ||
		st.Floor.Code != "en" || st.Floor.Listeners != 0 || len(st.Languages) != 3 {
		t.Fatalf("empty status %+v", st)
	}
	for _, l := range st.Languages {
		if l.State != livestate.StateIdle || l.Listeners != 0 {
			t.Fatalf("empty status language %+v", l)
		}
	}

	since := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	f.putState(livestate.MicKey("keynote", "main"), livestate.Mic{Node: "ingest-1", Since: since, SampleRate: 48000, Language: "en"})
	f.putState(livestate.ListenersKey("keynote", "es", "fan-1"), livestate.Listeners{Count: 3})
	f.putState(livestate.ListenersKey("keynote", "es", "fan-2"), livestate.Listeners{Count: 2})
	f.putState(livestate.ListenersKey("keynote", "en", "fan-1"), livestate.Listeners{Count: 1})
	f.putState(livestate.ListenersKey("keynote", "en", "fan-2"), livestate.Listeners{Count: 1})
	f.putState(livestate.ListenersKey("keynote", "fr", "fan-2"), livestate.Listeners{Count: 4})
	f.putState(livestate.ListenersKey("keynote", "it", "fan-1"), livestate.Listeners{Count: 9}) // not a room language
	f.putState(livestate.ListenersKey("keynote-2", "es", "fan-1"), livestate.Listeners{Count: 100})
	f.putState(livestate.ChannelKey("keynote", "es"), livestate.Channel{
		State: livestate.StateActive, Kind: "translate", Engine: "openai", Node: "tr-1", Since: since, SessionSeconds: 12.5})
	f.putState(livestate.ChannelKey("keynote", "fr"), livestate.Channel{
		State: livestate.StateError, Error: "invalid_api_key: the API key was refused", Node: "tr-2"})
	f.putState(livestate.ChannelKey("keynote-2", "es"), livestate.Channel{State: livestate.StateStarting})
	// A listener count that went away no longer counts.
	f.putState(livestate.ListenersKey("keynote", "es", "fan-3"), livestate.Listeners{Count: 50})
	if err := f.bus.State.Delete(t.Context(), livestate.ListenersKey("keynote", "es", "fan-3")); err != nil {
		t.Fatal(err)
	}

	st = Status{}
	r = f.admin("GET", "/api/v1/rooms/keynote/status", "")
	mustStatus(t, r, 200)
	r.decode(t, &st)
	if !st.Speaker.Connected || st.Speaker.Since == nil || !st.Speaker.Since.Equal(since) || st.Speaker.Node != "ingest-1" {
		t.Fatalf("speaker %+v", st.Speaker)
	}
	if st.Floor != (FloorStatus{Code: "en", Listeners: 2, State: "idle"}) {
		t.Fatalf("floor %+v", st.Floor)
	}
	want := []LanguageStatus{
		{Code: "es", Listeners: 5, State: "active", Kind: "translate", Engine: "openai", Node: "tr-1", SessionSeconds: 12.5},
		{Code: "fr", Listeners: 4, State: "error", Error: "invalid_api_key: the API key was refused", Node: "tr-2"},
		{Code: "de", Listeners: 0, State: "idle"},
	}
	if len(st.Languages) != len(want) {
		t.Fatalf("languages %+v", st.Languages)
	}
	for i := range want {
		if st.Languages[i] != want[i] {
			t.Errorf("language %d: %+v, want %+v", i, st.Languages[i], want[i])
		}
	}
	// The body has the documented shape.
	for _, key := range []string{`"speaker":{"connected":true,"since":`, `"floor":{"code":"en","listeners":2,`, `"mics":[{"mic":"main","language":"en","since":"2026-05-01T09:00:00Z","node":"ingest-1"`,
		`{"code":"de","listeners":0,"state":"idle","error":"","session_seconds":0}`} {
		if !strings.Contains(string(r.body), key) {
			t.Errorf("status body lacks %s: %s", key, r.body)
		}
	}

	mustStatus(t, f.admin("GET", "/api/v1/rooms/nope/status", ""), 404)
}

func TestEngines(t *testing.T) {
	f := newFixture(t, "")

	// No engine registered: any valid language is accepted.
	var eng enginesJSON
	r := f.request("GET", "/api/v1/engines", "", "")
	mustStatus(t, r, 200)
	r.decode(t, &eng)
	if len(eng.Engines) != 0 || len(eng.Sources) != 0 || len(eng.Targets) != 0 || eng.AnySource || eng.AnyTarget {
		t.Fatalf("engines with none registered: %s", r.body)
	}
	f.createRoom(`{"id":"early","source_language":"en","languages":[{"code":"ja"}]}`)
	if !strings.Contains(f.logs.String(), "no translator engine is registered") {
		t.Fatal("no warning for an unchecked room")
	}

	f.putState(livestate.EngineKey("node-a"), livestate.Engine{Engine: "local", Sources: []string{"en"}, Targets: []string{"es", "fr"}})
	r = f.admin("POST", "/api/v1/rooms", `{"id":"bad","source_language":"ja","languages":[{"code":"es"}]}`)
	mustStatus(t, r, 400)
	if e := r.errBody(t); e.Code != "unsupported_language" || !strings.Contains(e.Message, "cannot serve ja (source)") ||
		!strings.Contains(e.Message, "sources: en; targets: es, fr") {
		t.Fatalf("error %+v", e)
	}
	f.putState(livestate.EngineKey("node-b"), livestate.Engine{Engine: "openai", Targets: []string{"de", "ES", "pt"}})
	eng = enginesJSON{}
	r = f.request("GET", "/api/v1/engines", "", "")
	mustStatus(t, r, 200)
	r.decode(t, &eng)
	if len(eng.Engines) != 2 || eng.Engines[0].Node != "node-a" || eng.Engines[0].Engine != "local" ||
		eng.Engines[1].Node != "node-b" || !eng.Engines[1].AnySource || eng.Engines[0].AnySource {
		t.Fatalf("engines %s", r.body)
	}
	if got := codesOf(eng.Engines[0].Sources); got != "en" {
		t.Fatalf("node-a sources %s", got)
	}
	if got := codesOf(eng.Engines[1].Targets); got != "de,pt,es" { // sorted by English name
		t.Fatalf("node-b targets %s", got)
	}
	if eng.Engines[1].Targets[2].English != "Spanish" || eng.Engines[1].Targets[2].Native != "Español" {
		t.Fatalf("language names %+v", eng.Engines[1].Targets)
	}
	if got := codesOf(eng.Targets); got != "fr,de,pt,es" || eng.AnyTarget || !eng.AnySource {
		t.Fatalf("union targets %s (any %v), any source %v", got, eng.AnyTarget, eng.AnySource)
	}

	// One engine serves the source and all targets.
	f.createRoom(`{"id":"ok1","source_language":"en","languages":[{"code":"es"},{"code":"fr"}]}`)
	f.createRoom(`{"id":"ok2","source_language":"ja","languages":[{"code":"de"},{"code":"pt-BR"}]}`) // node-b: any source, pt covers pt-BR
	f.createRoom(`{"id":"floor-only","source_language":"ja"}`)

	r = f.admin("POST", "/api/v1/rooms", `{"id":"bad","source_language":"en","languages":[{"code":"es"},{"code":"ja"}]}`)
	mustStatus(t, r, 400)
	e := r.errBody(t)
	if e.Code != "unsupported_language" || !strings.Contains(e.Message, "cannot serve ja") ||
		!strings.Contains(e.Message, "targets: de, es, fr, pt") || !strings.Contains(e.Message, "sources: any language") {
		t.Fatalf("error %+v", e)
	}
	// Every language is served somewhere, but by no single engine.
	r = f.admin("POST", "/api/v1/rooms", `{"id":"bad","source_language":"en","languages":[{"code":"fr"},{"code":"de"}]}`)
	mustStatus(t, r, 400)
	if e := r.errBody(t); e.Code != "unsupported_language" || !strings.Contains(e.Message, "no single") {
		t.Fatalf("error %+v", e)
	}
	// PATCH checks changed languages too, and leaves the room as it was.
	r = f.admin("PATCH", "/api/v1/rooms/ok1", `{"languages":[{"code":"ko"}]}`)
	mustStatus(t, r, 400)
	if e := r.errBody(t); e.Code != "unsupported_language" || !strings.Contains(e.Message, "ko") {
		t.Fatalf("error %+v", e)
	}
	r = f.admin("PATCH", "/api/v1/rooms/ok1", `{"source_language":"de"}`)
	mustStatus(t, r, 400)
	if e := r.errBody(t); e.Code != "unsupported_language" || !strings.Contains(e.Message, "no single") {
		t.Fatalf("error %+v", e)
	}
	// A room already unservable (created before engines registered) can still be renamed.
	mustStatus(t, f.admin("PATCH", "/api/v1/rooms/early", `{"name":"Early bird"}`), 200)
	if rm, _, _ := f.rooms.Get(t.Context(), "ok1"); codes(rm)[0] != "es" || rm.SourceLanguage != "en" {
		t.Fatalf("refused patch changed the room: %+v", rm)
	}
	if _, _, err := f.rooms.Get(t.Context(), "bad"); err == nil {
		t.Fatal("refused room was created")
	}

	// An engine with no target list takes any target.
	f.putState(livestate.EngineKey("node-c"), livestate.Engine{Engine: "openai", Sources: []string{"en"}})
	f.createRoom(`{"id":"ok3","source_language":"en","languages":[{"code":"ko"},{"code":"sw"}]}`)
	eng = enginesJSON{}
	f.request("GET", "/api/v1/engines", "", "").decode(t, &eng)
	if !eng.AnyTarget || !eng.Engines[2].AnyTarget || len(eng.Engines[2].Targets) != 0 {
		t.Fatalf("any target: %+v", eng)
	}
}

func codesOf(ls []room.Lang) string {
	c := make([]string, len(ls))
	for i, l := range ls {
		c[i] = l.Code
	}
	return strings.Join(c, ",")
}

func TestLinks(t *testing.T) {
	f := newFixture(t, "")
	rm := f.createRoom(keynote)
	var l Links
	r := f.admin("GET", "/api/v1/rooms/keynote/links", "", "X-Forwarded-Proto", "https")
	mustStatus(t, r, 200)
	r.decode(t, &l)
	host := strings.TrimPrefix(f.http.URL, "http://")
	if l.Listen != "https://"+host+"/rooms/keynote" || l.Speak != "https://"+host+"/rooms/keynote/speak#key="+rm.SpeakerKey {
		t.Fatalf("links %+v", l)
	}
	r = f.admin("GET", "/api/v1/rooms/keynote/links", "", "X-Forwarded-Proto", "gopher")
	r.decode(t, &l)
	if !strings.HasPrefix(l.Listen, "http://"+host+"/") {
		t.Fatalf("links with a bogus proto %+v", l)
	}
	mustStatus(t, f.admin("GET", "/api/v1/rooms/nope/links", ""), 404)
}

func TestQRCode(t *testing.T) {
	f := newFixture(t, "https://talks.example.org")
	rm := f.createRoom(keynote)
	for _, c := range []struct{ query, want string }{
		{"", "https://talks.example.org/rooms/keynote"},
		{"?for=listen", "https://talks.example.org/rooms/keynote"},
		{"?for=speak&size=300", "https://talks.example.org/rooms/keynote/speak#key=" + rm.SpeakerKey},
	} {
		r := f.admin("GET", "/api/v1/rooms/keynote/qr.png"+c.query, "")
		mustStatus(t, r, 200)
		if ct := r.header.Get("Content-Type"); ct != "image/png" {
			t.Fatalf("content type %q", ct)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Fatal("QR code may be cached")
		}
		img, err := png.Decode(bytes.NewReader(r.body))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", c.query, err)
		}
		size := 512
		if strings.Contains(c.query, "size=300") {
			size = 300
		}
		if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
			t.Fatalf("%s: %v, want %dx%d", c.query, b, size, size)
		}
		if got := decodeQR(t, img); got != c.want {
			t.Fatalf("%s: QR says %q, want %q", c.query, got, c.want)
		}
	}
	for _, q := range []string{"?for=everyone", "?size=12", "?size=big", "?size=99999"} {
		r := f.admin("GET", "/api/v1/rooms/keynote/qr.png"+q, "")
		mustStatus(t, r, 400)
	}
	mustStatus(t, f.admin("GET", "/api/v1/rooms/nope/qr.png", ""), 404)
	if r := f.request("GET", "/api/v1/rooms/keynote/qr.png?for=speak", "", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("speaker QR without a token: %d", r.status)
	}
}

func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	// The image is nothing but the code: the pure-barcode path reads its
	// modules exactly, where finder-pattern detection misjudged some keys.
	hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_PURE_BARCODE: true}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		t.Fatalf("QR code does not decode: %v", err)
	}
	return res.GetText()
}
