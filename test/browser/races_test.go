package browser

import (
	"context"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/internal/client"
	"github.com/babelcast/babelcast/test/harness"
)

// TestLanguageRemovedWhileListening: the organizers remove the language an
// attendee listens to. The server closes that stream with 4404, as it does
// when the whole room is deleted; the page asks the room which it was and,
// the room being there, switches to the source language and says why,
// rather than saying the room has closed (which it says once the room is
// deleted).
func TestLanguageRemovedWhileListening(t *testing.T) {
	ctx, s := startService(t, 90*time.Second)
	r := s.API.CreateRoom(`{"id":"salon","name":"Salon","source_language":"en","languages":[{"code":"es"},{"code":"fr"}]}`)
	b := newBrowser(ctx, t, browserOptions{})
	// Once the room is deleted, the page looks it up: a 404 the browser logs.
	a := newTab(b, t, "attendee", allowRule{
		regexp.MustCompile(`^network error: Failed to load resource: the server responded with a status of 404 \(Not Found\) https?://[^ ]+/api/v1/rooms/salon/public$`),
		"the page looks up the deleted room",
	})
	a.navigate(s.URL()+"/rooms/"+r.ID, "#play")
	a.waitFor("the language choice", `!!document.getElementById('lang-fr')`, 5*time.Second)
	a.click("#lang-fr")
	a.click("#play")
	harness.WaitFor(t, 10*time.Second, "the attendee on French", func() bool { return s.API.Status(r.ID).Listeners("fr") == 1 })

	if code := s.API.Call("PATCH", "/api/v1/rooms/"+r.ID, `{"languages":[{"code":"es"}]}`, nil); code != http.StatusOK {
		t.Fatalf("remove French: %d", code)
	}
	// The attendee chose French: the page spoke French, and says it in
	// French until it follows the source language.
	a.waitFor("the language-gone notice, the source language playing", `
		document.getElementById('page-notice').textContent.includes('Cette langue n’est plus proposée') &&
		!document.getElementById('player').hidden &&
		document.getElementById('lang-en').checked &&
		!document.getElementById('lang-fr') &&
		document.getElementById('state-pill').dataset.state !== 'ended'`, 10*time.Second)
	harness.WaitFor(t, 10*time.Second, "the attendee on English", func() bool { return s.API.Status(r.ID).Listeners("en") == 1 })
	a.screenshots("attendee-language-removed")

	// Deleting the room closes both streams with 4404 too: now the room
	// is not there, and the page says it has closed.
	if code := s.API.Call("DELETE", "/api/v1/rooms/"+r.ID, "", nil); code != http.StatusNoContent {
		t.Fatalf("delete the room: %d", code)
	}
	a.waitFor("the room-closed notice", `
		document.getElementById('page-notice').textContent.includes('This room has closed') &&
		document.getElementById('player').hidden &&
		document.getElementById('state-pill').dataset.state === 'ended'`, 10*time.Second)
}

// TestConversationLanguageRemoved: the organizers remove the language a
// phone of a conversation speaks. Its channel is closed with 4404, as when
// the room is deleted; the page finds the room still there, takes the
// phone off the room and asks for another language, rather than saying
// the conversation was closed. The room has a passcode, which the phones
// are not told: the speaker key of their link stands for it (joinTalk
// waits for the channel's hello).
func TestConversationLanguageRemoved(t *testing.T) {
	ctx, s := startService(t, 90*time.Second)
	r := s.API.CreateRoom(`{"id":"mesa","name":"Mesa","source_language":"en","languages":[{"code":"es"},{"code":"ko"}],"passcode":"s3cret"}`)
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "de", 2, 1)})
	p := joinTalk(t, s, b, r, "ana", "es", "Ana")
	harness.WaitFor(t, 10*time.Second, "the phone as a mic of the room", func() bool { return len(s.API.Status(r.ID).Mics) == 1 })

	if code := s.API.Call("PATCH", "/api/v1/rooms/"+r.ID, `{"languages":[{"code":"ko"}]}`, nil); code != http.StatusOK {
		t.Fatalf("remove Spanish: %d", code)
	}
	// The phone spoke Spanish: the page says it in Spanish.
	p.waitFor("the setup, asking for another language", `
		document.getElementById('page-notice').textContent.includes('Esta sala ya no ofrece ese idioma') &&
		!document.getElementById('setup').hidden &&
		document.getElementById('talk').hidden &&
		!document.getElementById('lang-es') && !!document.getElementById('lang-ko') &&
		document.getElementById('state-pill').dataset.state !== 'ended'`, 10*time.Second)
	harness.WaitFor(t, 10*time.Second, "the phone's mic gone", func() bool { return len(s.API.Status(r.ID).Mics) == 0 })
	p.screenshots("talk-language-removed")
}

// TestBoothBackOnAirAfterOutage: an interpreter on air loses the server
// for longer than one reconnection attempt. The booth decides to take the
// air again at the close that took it away; the failed attempts after it
// must not undo that, so once the server is back (and nobody else took
// the air) the interpreter is on air again.
func TestBoothBackOnAirAfterOutage(t *testing.T) {
	ctx, s := startService(t, 120*time.Second)
	r := s.API.CreateRoom(`{"id":"cabina","name":"Cabina","source_language":"en","languages":[{"code":"es","booth":true}]}`)
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "de", 2, 1)})
	// While the server is down the browser logs the refused connections.
	booth := newTab(b, t, "booth",
		allowRule{regexp.MustCompile(`WebSocket connection to 'ws://[^']+/api/v1/rooms/cabina/booth/es[^']*' failed`), "server down"},
		allowRule{regexp.MustCompile(`^network error: Failed to load resource: net::ERR_CONNECTION_(REFUSED|RESET) .*/api/v1/rooms/cabina/booth/es`), "server down"},
		allowRule{regexp.MustCompile(`^network error: Failed to load resource: the server responded with a status of 503 .*/api/v1/rooms/cabina/booth/es`), "server stopping"},
	)
	booth.navigate(r.Links.Booths["es"], "#booth-start")
	booth.click("#booth-start")
	booth.waitFor("the booth connected", jsPill+` === 'live' && !document.getElementById('take').disabled`, 15*time.Second)
	booth.click("#take")
	booth.waitFor("the on-air light", `document.getElementById('on-air').dataset.onAir === 'true'`, 5*time.Second)

	// Count the booth's connection attempts from now on.
	eval[chromedp.Void](booth, `(() => {
		window.__boothTries = 0;
		const WS = window.WebSocket;
		window.WebSocket = class extends WS {
			constructor(url, protocols) {
				super(url, protocols);
				if (String(url).includes('/booth/')) window.__boothTries++;
			}
		};
	})()`)
	s.Stop()
	// A second attempt means the first one failed and its close was handled.
	booth.waitFor("two attempts while the server is down", `window.__boothTries >= 2`, 15*time.Second)
	s.Restart()
	booth.waitFor("the interpreter on air again", `document.getElementById('on-air').dataset.onAir === 'true'`, 15*time.Second)
}

// TestQuestionMicRefusedOnce: the moderator gives an attendee the floor,
// and the attendee's microphone cannot start (blocked in the site
// settings since they asked). The page says so once; it does not ask for the
// microphone again at every look at the question (each try asked again and
// restarted the attendee's streams), until the question ends.
func TestQuestionMicRefusedOnce(t *testing.T) {
	ctx, s := startService(t, 90*time.Second)
	r := s.API.CreateRoom(`{"id":"foro","name":"Foro","source_language":"en","languages":[{"code":"es"}],"questions":true}`)
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "en", 2, 1)})
	a := newTab(b, t, "attendee")
	a.navigate(s.URL()+"/rooms/"+r.ID, "#play")
	a.waitFor("the question section", `!document.getElementById('ask').hidden`, 5*time.Second)
	askQuestion(t, a, "Ana")

	// From now on the microphone is refused, as when the attendee blocks
	// it in the site settings (Chromium's fake media UI grants every
	// request, so the page's getUserMedia refuses it here); the page's asks
	// for it and its looks at the question are counted.
	eval[chromedp.Void](a, `(() => {
		window.__mics = 0;
		window.__looks = 0;
		navigator.mediaDevices.getUserMedia = () => {
			window.__mics++;
			return Promise.reject(new DOMException('refused', 'NotAllowedError'));
		};
		const f = window.fetch;
		window.fetch = (u, o) => { if (/\/questions\/[^/]+$/.test(String(u))) window.__looks++; return f(u, o); };
	})()`)

	var list struct {
		Questions []struct {
			ID string `json:"id"`
		} `json:"questions"`
	}
	if code := s.API.Call("GET", "/api/v1/rooms/"+r.ID+"/questions", "", &list); code != http.StatusOK || len(list.Questions) != 1 {
		t.Fatalf("the questions: %d %+v", code, list)
	}
	if code := s.API.Call("POST", "/api/v1/rooms/"+r.ID+"/questions/"+list.Questions[0].ID+"/accept", "", nil); code != http.StatusOK {
		t.Fatalf("accept the question: %d", code)
	}
	a.waitFor("the microphone failure", `document.getElementById('ask-notice').textContent.includes('The microphone could not start')`, 10*time.Second)
	looks := eval[float64](a, `window.__looks`)
	a.waitFor("three more looks at the question", `window.__looks >= `+jsNumber(looks+3), 15*time.Second)
	if n := eval[float64](a, `window.__mics`); n != 1 {
		t.Errorf("the page asked for the microphone %v times after the floor was given, want once", n)
	}
	if phase := eval[string](a, `document.getElementById('ask').dataset.phase`); phase == "idle" {
		t.Errorf("the question is over on the page (phase %q) though the moderator has not ended it", phase)
	}
}

// TestSpeakerStopWhileStarting: the speaker presses Start and, while the
// page still lists the microphones (after the capture started, before
// the connection), Stop. The page must stay off air: no connection of the
// mic afterwards, the pill not sending.
func TestSpeakerStopWhileStarting(t *testing.T) {
	ctx, s := startService(t, 90*time.Second)
	r := s.API.CreateRoom(`{"id":"atril","name":"Atril","source_language":"en","languages":[{"code":"es"}]}`)
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "en", 2, 1)})
	sp := newTab(b, t, "speaker")
	sp.navigate(s.URL()+"/rooms/"+r.ID+"/speak#key="+r.SpeakerKey, "#start")
	sp.waitFor("the Start button to be enabled", `!document.getElementById('start').disabled`, 5*time.Second)
	// The page's listing of the microphones waits for the test; the mic's
	// connections are counted.
	eval[chromedp.Void](sp, `(() => {
		navigator.mediaDevices.enumerateDevices = () => new Promise((resolve) => { window.__listed = () => resolve([]); });
		window.__speaks = 0;
		const WS = window.WebSocket;
		window.WebSocket = class extends WS {
			constructor(url, protocols) {
				super(url, protocols);
				if (String(url).includes('/speak')) window.__speaks++;
			}
		};
	})()`)
	sp.click("#start")
	sp.waitFor("the page listing the microphones", `!!window.__listed`, 10*time.Second)
	sp.click("#stop")
	// Let the listing finish; a macrotask later every continuation of it has run.
	got := eval[[]any](sp, `(async () => {
		window.__listed();
		await new Promise((r) => setTimeout(r, 0));
		return [document.getElementById('state-pill').dataset.state, window.__speaks];
	})()`)
	if got[0] != "idle" || got[1] != float64(0) {
		t.Errorf("after Stop while starting: pill %v, %v connections of the mic; want idle and none", got[0], got[1])
	}
}

// TestPasscodeUncheckedIsNotTaken: the attendee types a wrong passcode
// while the server is out of reach. The page cannot check it and goes on;
// once the server is back, the stream refuses it before its hello, and
// the page says it was not accepted, not that the organizers changed it
// (the server never took it).
func TestPasscodeUncheckedIsNotTaken(t *testing.T) {
	ctx, s := startService(t, 90*time.Second)
	r := s.API.CreateRoom(`{"id":"vault","name":"Vault","source_language":"en","languages":[{"code":"es"}],"passcode":"s3cret"}`)
	b := newBrowser(ctx, t, browserOptions{})
	a := newTab(b, t, "attendee",
		allowRule{regexp.MustCompile(`WebSocket connection to 'ws://[^']+/api/v1/rooms/vault/listen[^']*' failed`), "server down"},
		allowRule{regexp.MustCompile(`^network error: Failed to load resource: net::ERR_CONNECTION_(REFUSED|RESET) .*/api/v1/rooms/vault/listen`), "server down"},
	)
	a.navigate(s.URL()+"/rooms/"+r.ID, "#room-name")
	a.waitFor("the passcode form", `!document.getElementById('passcode-form').hidden`, 10*time.Second)

	s.Stop()
	a.do("enter a wrong passcode",
		chromedp.SendKeys(chromedp.CSS("#passcode"), "guess"),
		chromedp.Click(chromedp.CSS("#passcode-submit")),
	)
	a.waitFor("the player (the passcode could not be checked)", `!document.getElementById('player').hidden`, 10*time.Second)
	s.Restart()
	a.click("#play")
	a.waitFor("the passcode form, saying it was not accepted", `!document.getElementById('passcode-form').hidden &&
		document.getElementById('passcode-error').textContent.includes('That passcode was not accepted') &&
		document.getElementById('player').hidden`, 15*time.Second)
}

// TestTooManyRequestsInTheAttendeesLanguage: the attendee's address is
// refused with 429 when the page checks the passcode (here: it has as many
// listener connections open as the room's node allows one address; a
// venue's guessers would do the same), and the page speaks Spanish. The
// form says so in Spanish, not with the server's English message.
func TestTooManyRequestsInTheAttendeesLanguage(t *testing.T) {
	ctx, s := startServiceWith(t, 90*time.Second, func(c *app.Config) { c.MaxListenersPerAddress = 1 })
	r := s.API.CreateRoom(`{"id":"sala","name":"Sala","source_language":"es","languages":[{"code":"en"}],"passcode":"s3cret"}`)
	b := newBrowser(ctx, t, browserOptions{lang: "es"})
	a := newTab(b, t, "attendee", allowRule{
		regexp.MustCompile(`^network error: Failed to load resource: the server responded with a status of 429 .*/api/v1/rooms/sala/listen`),
		"the address has no listener connection left",
	}, allowRule{
		regexp.MustCompile(`WebSocket connection to 'ws://[^']+/api/v1/rooms/sala/listen[^']*' failed`),
		"the handshake is refused (429)",
	})
	a.navigate(s.URL()+"/rooms/"+r.ID, "#room-name")
	a.waitFor("the passcode form", `!document.getElementById('passcode-form').hidden`, 10*time.Second)

	// The address's one connection, held until the end of the test.
	hello := make(chan struct{})
	var once sync.Once
	lctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- client.Listen(lctx, client.ListenOptions{Server: s.URL(), Room: r.ID, Lang: "es", Passcode: "s3cret",
			OnMessage: func(typ string, _ []byte) {
				if typ == "hello" {
					once.Do(func() { close(hello) })
				}
			}})
	}()
	t.Cleanup(func() { stop(); <-done })
	select {
	case <-hello:
	case err := <-done:
		t.Fatalf("the held listener: %v", err)
	case <-ctx.Done():
		t.Fatal("the held listener got no hello")
	}

	a.do("enter the passcode",
		chromedp.SendKeys(chromedp.CSS("#passcode"), "s3cret"),
		chromedp.Click(chromedp.CSS("#passcode-submit")),
	)
	a.waitFor("too many, in Spanish", `document.getElementById('passcode-error').textContent ===
		'Demasiados intentos' + 'Demasiados intentos. Espera un momento e inténtalo de nuevo.'`, 10*time.Second)
}
