package browser

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/babelcast/babelcast/test/harness"
)

// jsVoice is the attendee page's "Interpreter" / "AI" label (in Spanish
// on a Spanish channel: "Intérprete" / "IA").
const jsVoice = `document.getElementById('voice').dataset.voice`

// TestBoothPage drives the interpreter's booth page in Chromium beside a
// speaker and an attendee of the Spanish channel: the interpreter (a fake
// microphone "speaking" German's tone) enters the booth, hears the floor,
// takes the air, and the attendee hears them and sees "Interpreter"; a
// cough hands the channel to the AI; handing over leaves it to the AI;
// the console shows the booth staffed and on air, with its link.
func TestBoothPage(t *testing.T) {
	ctx, s := startService(t, 150*time.Second)
	r := s.API.CreateRoom(`{"id":"booths","name":"With a booth","source_language":"en","languages":[{"code":"es","booth":true}],
		"glossary":[{"term":"NATS","note":"product name, keep","translations":{"es":"NATS"}}]}`)
	link := r.Links.Booths["es"]
	if link == "" || !strings.Contains(link, "/rooms/booths/booth/es#key=bth_") {
		t.Fatalf("booth link %q", link)
	}
	floorB := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "en", 3, 1)})
	_, attendee := goLive(t, s, floorB, r)
	tapListeners(attendee) // from the next connection on: reopen by replaying below
	attendee.waitFor("the attendee told the AI is heard", jsVoice+` === 'ai'`, 10*time.Second)
	if label := eval[string](attendee, `document.getElementById("voice").textContent`); label != "IA" {
		t.Errorf("voice label %q, want IA (AI, on the Spanish page)", label)
	}

	boothB := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "de", 4, 1)})
	booth := newTab(boothB, t, "booth")
	booth.navigate(link, "#booth-start")
	if loc := eval[string](booth, `location.href`); strings.Contains(loc, "bth_") {
		t.Errorf("the booth key stays in the address bar: %s", loc)
	}
	booth.waitFor("the glossary", `document.getElementById('glossary').textContent.includes('NATS')`, 10*time.Second)
	tapListeners(booth)
	booth.do("type the name", chromedp.SendKeys(chromedp.CSS("#booth-name"), "Ines"))
	booth.click("#booth-start")
	booth.waitFor("the booth connected and told nobody is on air", jsPill+` === 'live' && !document.getElementById('take').disabled`, 15*time.Second)
	// The floor's talk has pauses: wait for half a second of it rather
	// than for a length of feed, which may all fall in a pause.
	var inBooth map[string]int
	harness.WaitFor(t, 20*time.Second, "the floor in the headphones", func() bool {
		inBooth = voices(heardWhere(booth, `r.url.includes('/booth/')`), "en", "es", "de")
		return inBooth["en"] >= 5
	})
	if inBooth["de"] > 0 {
		t.Errorf("the booth heard %s, want the floor (en) and not itself (de)", fmtVoices(inBooth))
	}

	booth.click("#take")
	booth.waitFor("the on-air light", `document.getElementById('on-air').dataset.onAir === 'true'`, 5*time.Second)
	booth.waitFor("Ines in the booth list, on air", `[...document.querySelectorAll('[data-testid=partner]')].some((li) => li.dataset.onAir === 'true' && li.textContent.includes('Ines'))`, 5*time.Second)
	attendee.waitFor("the attendee told the interpreter is heard", jsVoice+` === 'human'`, 10*time.Second)
	if label := eval[string](attendee, `document.getElementById('voice').textContent`); label != "Intérprete" {
		t.Errorf("voice label %q, want Intérprete (Interpreter, on the Spanish page)", label)
	}
	harness.WaitFor(t, 5*time.Second, "the console's status: booth on air", func() bool {
		var st struct {
			Languages []struct {
				Booth *struct {
					OnAir bool `json:"on_air"`
				} `json:"booth"`
			} `json:"languages"`
		}
		s.API.Call("GET", "/api/v1/rooms/booths/status", "", &st)
		return len(st.Languages) == 1 && st.Languages[0].Booth != nil && st.Languages[0].Booth.OnAir
	})

	// The console: the booth staffed with Ines on air, its link and QR code.
	console := openConsole(t, s, floorB, "/admin#room="+r.ID, "#room-detail")
	console.waitFor("the booth on air in the status", `[...document.querySelectorAll('[data-testid=status-booth]')].some((d) =>
		d.dataset.onAir === 'true' && d.textContent.includes('Ines on air'))`, 10*time.Second)
	console.click(`[data-testid=show-booth][data-lang=es]`)
	console.waitFor("the booth link and its QR code", `document.querySelector('[data-testid=link-booth][data-lang=es]').textContent === `+jsString(link)+
		` && document.querySelector('[data-testid=qr-booth]').naturalWidth > 0`, 10*time.Second)
	console.screenshots("console-booth")

	// A listener joining now hears the interpreter, not the AI.
	attendee.click("#play") // pause
	attendee.click("#play") // and play again: a new connection, tapped
	attendee.waitFor("3 s of the channel", `window.__tap.reduce((n, r) => n + r.bytes, 0) > 144000`, 20*time.Second)
	got := voices(heard(attendee, "es"), "en", "es", "de")
	t.Logf("attendee heard, with the interpreter on air: %s", fmtVoices(got))
	if got["de"] < 5 || got["es"] > 2 {
		t.Errorf("the attendee heard %s, want the interpreter (de) and not the AI (es)", fmtVoices(got))
	}
	booth.screenshots("booth-on-air")

	booth.click("#cough")
	booth.waitFor("the light says muted", `document.getElementById('on-air').dataset.muted === 'true'`, 5*time.Second)
	attendee.waitFor("the AI while the interpreter coughs", jsVoice+` === 'ai'`, 5*time.Second)
	booth.click("#cough")
	attendee.waitFor("the interpreter back after the cough", jsVoice+` === 'human'`, 10*time.Second)

	booth.click("#hand-over")
	booth.waitFor("off air", `document.getElementById('on-air').dataset.onAir === 'false'`, 5*time.Second)
	attendee.waitFor("the AI after the hand-over", jsVoice+` === 'ai'`, 5*time.Second)

	console.waitFor("nobody on air in the status", `[...document.querySelectorAll('[data-testid=status-booth]')].some((d) =>
		d.dataset.onAir === 'false' && d.dataset.staffed === 'true')`, 10*time.Second)
}
