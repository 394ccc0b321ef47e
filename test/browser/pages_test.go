package browser

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// Page state the tests read (the pages expose it for people debugging and
// for these tests: data-state on the pill, data-main-bytes on the player).
const (
	jsPill       = `document.getElementById('state-pill').dataset.state`
	jsMainBytes  = `Number(document.getElementById('player').dataset.mainBytes || 0)`
	jsCaptions   = `document.getElementById('captions').textContent`
	jsSpeakerRow = `document.querySelector('#languages-body tr[data-lang="es"] td.num')`
)

// goLive opens the speaker page for room (Spanish target) on one tab and
// the attendee page on another, starts the microphone, picks Spanish and
// presses play, and waits until the attendee hears and reads the Spanish
// translation. It returns the speaker and attendee tabs.
func goLive(t *testing.T, s *service.Service, bctx context.Context, r harness.Room, allow ...allowRule) (speaker, attendee *tab) {
	t.Helper()
	speaker = newTab(bctx, t, "speaker", allow...)
	speaker.navigate(s.URL()+"/rooms/"+r.ID+"/speak#key="+r.SpeakerKey, "#start")
	// The key leaves the address bar at once (it is a secret).
	if loc := eval[string](speaker, `location.href`); strings.Contains(loc, r.SpeakerKey) {
		t.Errorf("the speaker key stays in the address bar: %s", loc)
	}
	speaker.waitFor("the Start button to be enabled", `!document.getElementById('start').disabled`, 5*time.Second)
	speaker.click("#start")
	speaker.waitFor("the speaker to be on air", jsPill+` === 'live'`, 10*time.Second)
	speaker.waitFor("the server to report the microphone level",
		`/dB/.test(document.getElementById('level-server-value').textContent)`, 5*time.Second)

	attendee = newTab(bctx, t, "attendee", allow...)
	attendee.navigate(s.URL()+"/rooms/"+r.ID, "#play")
	if name := eval[string](attendee, `document.getElementById('room-name').textContent`); name != r.Name {
		t.Errorf("attendee page names the room %q, want %q", name, r.Name)
	}
	attendee.click("#lang-es")
	attendee.click("#play")
	attendee.waitFor("the attendee page to be live", jsPill+` === 'live'`, 20*time.Second)
	attendee.waitFor("Spanish captions", jsCaptions+`.includes('[es] sentence')`, 15*time.Second)
	attendee.waitFor("translated audio to reach the player", jsMainBytes+` > 24000`, 10*time.Second)
	return speaker, attendee
}

// TestSpeakerToAttendee is the first page check: a speaker on the
// speaker page (Chromium's fake microphone playing English speech) and an
// attendee on the attendee page hearing and reading the Spanish
// translation, while the speaker sees the attendee counted.
func TestSpeakerToAttendee(t *testing.T) {
	ctx, s := startService(t, 120*time.Second)
	r := s.API.CreateRoom(`{"id":"keynote","name":"Opening keynote","source_language":"en","languages":[{"code":"es"}]}`)
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "en", 3, 1)})
	speaker, attendee := goLive(t, s, b, r)

	// Audio keeps coming: the player's byte count grows.
	before := eval[float64](attendee, jsMainBytes)
	attendee.waitFor("more translated audio", jsMainBytes+` > `+jsNumber(before+24000), 10*time.Second)
	if lang := eval[string](attendee, `document.querySelector('input[name=lang]:checked').value`); lang != "es" {
		t.Errorf("attendee page has %q checked, want es", lang)
	}

	// The speaker page counts the Spanish listener and shows its
	// translator active (status every 2 s; the listener's presence and the
	// translator's state are written apart, so one status may show the
	// listener before the translator has said it is on).
	jsSpanishState := `document.querySelector('#languages-body tr[data-lang="es"] .state').dataset.state`
	speaker.waitFor("the speaker page to count one Spanish listener, its translator active",
		jsSpeakerRow+` && `+jsSpeakerRow+`.textContent.trim() === '1' && `+jsSpanishState+` === 'active'`, 10*time.Second)

	st := s.API.Status(r.ID)
	if !st.Speaker.Connected {
		t.Error("the API's status says no speaker is connected")
	}
	if n := st.Listeners("es"); n != 1 {
		t.Errorf("the API's status counts %d Spanish listeners, want 1", n)
	}
	// The page plays the original quietly underneath (15% by default), on a
	// second listener connection to the floor itself (lang=floor), not to
	// the source language's channel.
	if st.Floor.MixListeners != 1 || st.Floor.Listeners != 0 {
		t.Errorf("the API's status counts %d floor and %d English listeners, want 1 and 0 (the original underneath is the floor)",
			st.Floor.MixListeners, st.Floor.Listeners)
	}

	attendee.screenshots("listen-live")
	speaker.screenshots("speak-on-air")
}

// TestPagesRecoverFromRestart restarts the service under live speaker and
// attendee pages: both must reconnect by themselves and carry on.
func TestPagesRecoverFromRestart(t *testing.T) {
	ctx, s := startService(t, 120*time.Second)
	r := s.API.CreateRoom(`{"id":"hall","name":"Hall","source_language":"en","languages":[{"code":"es"}]}`)
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "en", 3, 1)})
	// While the server is down or stopping, the browser logs the refused
	// connections and the 503 of a stopping server: expected here.
	down := []allowRule{
		{regexp.MustCompile(`WebSocket connection to 'ws://[^']+/api/v1/rooms/hall/(listen|speak)[^']*' failed`), "server restarting"},
		{regexp.MustCompile(`^network error: Failed to load resource: net::ERR_CONNECTION_(REFUSED|RESET) .*/api/v1/rooms/hall/`), "server restarting"},
		{regexp.MustCompile(`^network error: Failed to load resource: the server responded with a status of 503 .*/api/v1/rooms/hall/(listen|speak)`), "server stopping"},
	}
	speaker, attendee := goLive(t, s, b, r, down...)

	// Record every state the attendee's pill goes through.
	eval[chromedp.Void](attendee, `(() => {
		const pill = document.getElementById('state-pill');
		window.__states = [pill.dataset.state];
		new MutationObserver(() => {
			const s = pill.dataset.state;
			if (window.__states[window.__states.length - 1] !== s) window.__states.push(s);
		}).observe(pill, { attributes: true, attributeFilter: ['data-state'] });
	})()`)

	s.Restart()

	attendee.waitFor("the attendee page to show it is reconnecting",
		`window.__states.includes('reconnecting')`, 15*time.Second)
	attendee.waitFor("the attendee page to be live again",
		`(() => { const s = window.__states; const i = s.lastIndexOf('reconnecting');
		           return i >= 0 && s.slice(i).includes('live') && `+jsPill+` === 'live'; })()`, 20*time.Second)
	speaker.waitFor("the speaker page to be on air again", jsPill+` === 'live'`, 15*time.Second)
	harness.WaitFor(t, 10*time.Second, "the API to see the speaker again", func() bool { return s.API.Status(r.ID).Speaker.Connected })

	// And the translation flows again.
	before := eval[float64](attendee, jsMainBytes)
	attendee.waitFor("translated audio after the restart", jsMainBytes+` > `+jsNumber(before+24000), 15*time.Second)
	t.Logf("attendee pill went through %v", eval[[]string](attendee, `window.__states`))
}

// TestConsole signs in to the organizer console, creates a room through the
// dialog, checks its share links and QR codes, rotates the speaker key and
// deletes the room.
func TestConsole(t *testing.T) {
	ctx, s := startService(t, 90*time.Second)
	b := newBrowser(ctx, t, browserOptions{})
	c := openConsole(t, s, b, "/admin", "#app")

	// Create a room through the dialog.
	c.click("#new-room")
	c.waitFor("the room dialog", `document.getElementById('room-dialog').open`, 5*time.Second)
	c.do("fill in the room",
		chromedp.SendKeys(chromedp.CSS("#f-name"), "Main hall"),
		chromedp.SendKeys(chromedp.CSS("#f-id"), "main-hall"),
		chromedp.SetValue(chromedp.CSS("#f-source"), "en"),
		chromedp.Click(chromedp.CSS("#add-language")),
		chromedp.WaitVisible(chromedp.CSS(`#f-languages [data-testid="lang-row"] [data-testid="lang-code"]`)),
		chromedp.SetValue(chromedp.CSS(`#f-languages [data-testid="lang-code"]`), "es"),
		chromedp.SendKeys(chromedp.CSS("#f-max-mics"), "3"),
		chromedp.Click(chromedp.CSS("#f-questions")),
	)
	if v := eval[string](c, `document.querySelector('#f-languages [data-testid="lang-code"]').value`); v != "es" {
		t.Fatalf("the language row's select does not offer Spanish (value %q)", v)
	}
	c.click("#room-save")
	c.waitFor("the new room in the list", `!!document.querySelector('#rooms-list [data-room="main-hall"]')`, 5*time.Second)

	var rm harness.Room
	if code := s.API.Call("GET", "/api/v1/rooms/main-hall", "", &rm); code != http.StatusOK {
		t.Fatalf("the room made in the console is not in the API: HTTP %d", code)
	}
	if rm.Name != "Main hall" {
		t.Errorf("room name %q, want Main hall", rm.Name)
	}
	var full struct {
		SourceLanguage string `json:"source_language"`
		Languages      []struct {
			Code string `json:"code"`
		} `json:"languages"`
		MaxMics   int  `json:"max_mics"`
		Questions bool `json:"questions"`
	}
	s.API.Call("GET", "/api/v1/rooms/main-hall", "", &full)
	if full.SourceLanguage != "en" || len(full.Languages) != 1 || full.Languages[0].Code != "es" {
		t.Errorf("room made in the console: source %q, languages %+v; want en → es", full.SourceLanguage, full.Languages)
	}
	if full.MaxMics != 3 || !full.Questions {
		t.Errorf("room made in the console: max_mics %d, questions %v; want 3 and true", full.MaxMics, full.Questions)
	}

	// Open it: links and QR codes.
	c.click(`#rooms-list [data-room="main-hall"] [data-testid="room-open"]`)
	c.waitFor("the room's details", `!document.getElementById('room-detail').hidden &&
		document.getElementById('detail-name').textContent === 'Main hall'`, 5*time.Second)
	listenURL := s.URL() + "/rooms/main-hall"
	speakURL := listenURL + "/speak#key=" + rm.SpeakerKey
	checkShare(t, c, listenURL, speakURL)

	c.click("#show-speak")
	c.waitFor("the speaker QR code shown", `!document.getElementById('qr-speak').hidden`, 5*time.Second)
	c.click("#show-talk")
	c.waitFor("the conversation QR code shown", `!document.getElementById('qr-talk').hidden`, 5*time.Second)
	c.waitFor("the room's questions queue", `!document.getElementById('questions').hidden`, 5*time.Second)
	c.waitFor("the live status", `document.getElementById('status-speaker').textContent.includes('No speaker')`, 5*time.Second)
	c.screenshots("console-room")

	// A new speaker key: the speak link and its QR code change.
	c.click("#rotate-key")
	c.waitFor("the confirmation dialog", `document.getElementById('confirm-dialog').open`, 5*time.Second)
	c.click("#confirm-ok")
	c.waitFor("a new speak link", `document.getElementById('link-speak').textContent !== `+jsString(speakURL), 5*time.Second)
	var rotated harness.Room
	s.API.Call("GET", "/api/v1/rooms/main-hall", "", &rotated)
	if rotated.SpeakerKey == rm.SpeakerKey || rotated.SpeakerKey == "" {
		t.Fatal("rotating in the console did not change the speaker key")
	}
	checkShare(t, c, listenURL, listenURL+"/speak#key="+rotated.SpeakerKey)

	// Delete it.
	c.click("#delete-room")
	c.waitFor("the confirmation dialog", `document.getElementById('confirm-dialog').open`, 5*time.Second)
	c.click("#confirm-ok")
	c.waitFor("the room gone from the list", `!document.querySelector('#rooms-list [data-room="main-hall"]') &&
		document.getElementById('room-detail').hidden`, 5*time.Second)
	if code := s.API.Call("GET", "/api/v1/rooms/main-hall", "", nil); code != http.StatusNotFound {
		t.Errorf("deleted room: GET answers HTTP %d, want 404", code)
	}
}

// openConsole opens the console at path (/admin, or /admin#room=<id> for a
// room's details) in a new tab of b, signs in and waits for sel.
func openConsole(t *testing.T, s *service.Service, b context.Context, path, sel string) *tab {
	t.Helper()
	c := newTab(b, t, "console")
	c.navigate(s.URL()+path, "#admin-token")
	c.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#admin-token"), service.AdminToken),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS(sel)),
	)
	return c
}

// checkShare waits for the QR codes to load and checks that the links
// shown and the QR codes' contents are the room's links: the attendees',
// the speaker's and the conversation's (the speaker's with /talk).
func checkShare(t *testing.T, c *tab, listenURL, speakURL string) {
	t.Helper()
	talkURL := strings.Replace(speakURL, "/speak#", "/talk#", 1)
	c.waitFor("the speak link", `document.getElementById('link-speak').textContent === `+jsString(speakURL), 5*time.Second)
	c.waitFor("the talk link", `document.getElementById('link-talk').textContent === `+jsString(talkURL), 5*time.Second)
	if got := eval[string](c, `document.getElementById('link-listen').textContent`); got != listenURL {
		t.Errorf("attendee link shown %q, want %q", got, listenURL)
	}
	if got := eval[string](c, `document.getElementById('open-listen').href`); got != listenURL {
		t.Errorf("Open goes to %q, want %q", got, listenURL)
	}
	for id, want := range map[string]string{"qr-listen": listenURL, "qr-speak": speakURL, "qr-talk": talkURL} {
		c.waitFor(id+" to load", `(() => { const i = document.getElementById('`+id+`');
			return i.complete && i.naturalWidth > 0; })()`, 5*time.Second)
		if got := decodeQR(t, c, id); got != want {
			t.Errorf("%s encodes %q, want %q", id, got, want)
		}
	}
}

// decodeQR reads the QR code image the page shows (drawn on a canvas, as
// the page has it) and decodes it.
func decodeQR(t *testing.T, c *tab, id string) string {
	t.Helper()
	dataURL := eval[string](c, `(async () => {
		const i = document.getElementById('`+id+`');
		await i.decode();
		const cv = document.createElement('canvas');
		cv.width = i.naturalWidth; cv.height = i.naturalHeight;
		cv.getContext('2d').drawImage(i, 0, 0);
		return cv.toDataURL('image/png');
	})()`)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(dataURL, "data:image/png;base64,"))
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", id, err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	// The image at natural size is nothing but the code (see web's QR test).
	hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_PURE_BARCODE: true}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		t.Fatalf("%s does not decode as a QR code: %v", id, err)
	}
	return res.GetText()
}

// TestJoin checks the join page: a wrong code is explained on the page, a
// right one leads to the attendee page; and a link to a room that does not
// exist says so.
func TestJoin(t *testing.T) {
	ctx, s := startService(t, 90*time.Second)
	r := s.API.CreateRoom(`{"id":"track-2","name":"Track 2","source_language":"en","languages":[{"code":"es"}]}`)
	b := newBrowser(ctx, t, browserOptions{})
	// Asking about a code that is no room is a 404 the browser logs.
	noRoom := allowRule{
		regexp.MustCompile(`^network error: Failed to load resource: the server responded with a status of 404 \(Not Found\) https?://[^ ]+/api/v1/rooms/(nope|no-such-room)/public$`),
		"the pages look up a room that does not exist",
	}
	j := newTab(b, t, "join", noRoom)

	j.navigate(s.URL()+"/", "#room-code")
	j.screenshots("join")
	title := eval[string](j, `document.title`)

	j.do("join a room that does not exist",
		chromedp.SendKeys(chromedp.CSS("#room-code"), "nope"),
		chromedp.Click(chromedp.CSS("#join-submit")),
	)
	j.waitFor("the join error", `!document.getElementById('join-error').hidden`, 5*time.Second)
	if msg := eval[string](j, `document.getElementById('join-error').textContent`); !strings.Contains(msg, "nope") {
		t.Errorf("join error %q does not name the code", msg)
	}
	if path := eval[string](j, `location.pathname`); path != "/" {
		t.Errorf("a wrong code left the join page for %s", path)
	}
	if now := eval[string](j, `document.title`); now != title {
		t.Errorf("the join page's title went from %q to %q after a wrong code", title, now)
	}
	j.screenshots("join-error")

	eval[chromedp.Void](j, `document.getElementById('room-code').value = ''`)
	j.do("join the room",
		chromedp.SendKeys(chromedp.CSS("#room-code"), " Track-2 "),
		chromedp.Click(chromedp.CSS("#join-submit")),
	)
	j.waitFor("the attendee page of track-2", `location.pathname === '/rooms/track-2' &&
		document.getElementById('room-name').textContent === `+jsString(r.Name), 10*time.Second)
	j.waitFor("the language choice", `!!document.getElementById('lang-es')`, 5*time.Second)

	// A link to a room that does not exist says so on the attendee page.
	j.navigate(s.URL()+"/rooms/no-such-room", "#room-name")
	j.waitFor("the room-not-found notice", `document.getElementById('room-name').textContent === 'Room not found' &&
		!document.getElementById('page-notice').hidden`, 5*time.Second)
}

func jsNumber(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) }

// TestPasscode: an attendee of a room with a passcode is asked for it, told
// when it is wrong, gets in with the right one, and is asked again when the
// organizers change it mid-talk.
func TestPasscode(t *testing.T) {
	ctx, s := startService(t, 90*time.Second)
	r := s.API.CreateRoom(`{"id":"board","name":"Board meeting","source_language":"en","languages":[{"code":"es"}],"passcode":"s3cret"}`)
	b := newBrowser(ctx, t, browserOptions{})
	// The page checks a passcode by opening the listener WebSocket with it
	// (in the subprotocol, never in the URL): a hello for the right one,
	// 4403 before it for a wrong one.
	a := newTab(b, t, "attendee")
	a.navigate(s.URL()+"/rooms/"+r.ID, "#room-name")
	a.waitFor("the passcode form", `!document.getElementById('passcode-form').hidden &&
		document.getElementById('player').hidden`, 10*time.Second)
	a.screenshots("attendee-passcode")

	enter := func(code string) {
		t.Helper()
		eval[chromedp.Void](a, `document.getElementById('passcode').value = ''`)
		a.do("enter passcode "+code,
			chromedp.SendKeys(chromedp.CSS("#passcode"), code),
			chromedp.Click(chromedp.CSS("#passcode-submit")),
		)
	}
	enter("guess")
	a.waitFor("the wrong-passcode error", `!document.getElementById('passcode-error').hidden &&
		document.getElementById('player').hidden`, 5*time.Second)

	enter("s3cret")
	a.waitFor("the player", `!document.getElementById('player').hidden`, 5*time.Second)
	a.click("#lang-es")
	a.click("#play")
	harness.WaitFor(t, 10*time.Second, "the attendee to be counted", func() bool { return s.API.Status(r.ID).Listeners("es") == 1 })

	if code := s.API.Call("PATCH", "/api/v1/rooms/"+r.ID, `{"passcode":"n3w"}`, nil); code != http.StatusOK {
		t.Fatalf("change the passcode: %d", code)
	}
	// The attendee chose Spanish: the page speaks Spanish now.
	a.waitFor("the passcode form again, saying why", `!document.getElementById('passcode-form').hidden &&
		document.getElementById('passcode-error').textContent.includes('han cambiado la contraseña') &&
		document.getElementById('passcode').value === '' &&
		document.getElementById('player').hidden`, 10*time.Second)
	if pill := eval[string](a, `document.getElementById('state-pill').textContent`); pill != "Falta la contraseña" {
		t.Errorf("state pill says %q once the passcode changed", pill)
	}
	harness.WaitFor(t, 10*time.Second, "the attendee to be gone", func() bool { return s.API.Status(r.ID).Listeners("es") == 0 })
	a.screenshots("attendee-passcode-changed")

	// The passcode changes again between the form taking it and the
	// attendee pressing play: the stream is refused before its hello, yet the
	// page took that passcode a moment ago, so it says the passcode changed.
	// (So it goes, too, when one of the page's two streams is still
	// connecting as the passcode changes.)
	enter("n3w")
	a.waitFor("the player with the new passcode", `!document.getElementById('player').hidden`, 5*time.Second)
	if code := s.API.Call("PATCH", "/api/v1/rooms/"+r.ID, `{"passcode":"n4"}`, nil); code != http.StatusOK {
		t.Fatalf("change the passcode again: %d", code)
	}
	a.click("#play")
	a.waitFor("the passcode form, saying it changed", `!document.getElementById('passcode-form').hidden &&
		document.getElementById('passcode-error').textContent.includes('han cambiado la contraseña') &&
		document.getElementById('player').hidden`, 10*time.Second)

	enter("n4")
	a.waitFor("the player with the newest passcode", `!document.getElementById('player').hidden`, 5*time.Second)
	a.click("#play")
	harness.WaitFor(t, 10*time.Second, "the attendee back", func() bool { return s.API.Status(r.ID).Listeners("es") == 1 })
}
