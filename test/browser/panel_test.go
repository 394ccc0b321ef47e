package browser

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// openSpeaker opens the speaker page of room r in a new tab of b.
func openSpeaker(t *testing.T, s *service.Service, b context.Context, r harness.Room, name string) *tab {
	t.Helper()
	p := newTab(b, t, name)
	p.navigate(s.URL()+"/rooms/"+r.ID+"/speak#key="+r.SpeakerKey, "#start")
	p.waitFor("the Start button to be enabled", `!document.getElementById('start').disabled`, 5*time.Second)
	return p
}

// setSpeaker fills in who speaks into the speaker page's mic and in what
// language.
func setSpeaker(p *tab, name, lang string) {
	p.t.Helper()
	eval[chromedp.Void](p, `document.getElementById('speaker-name').value = ''`)
	p.do("name and language",
		chromedp.SendKeys(chromedp.CSS("#speaker-name"), name),
		chromedp.SetValue(chromedp.CSS("#speaker-language"), lang),
	)
}

// jsMics is the live mics a speaker page lists, as "mic language" strings.
const jsMics = `[...document.querySelectorAll('#mics-list [data-testid="mic"]')].map((li) => li.dataset.mic + ' ' + li.dataset.language)`

// TestPanel: the speaker pages of a panel. Ana speaks English into the main
// mic; Ben, on a second device, makes it another mic with one press and
// speaks Spanish, then switches to English mid-talk. Both pages list the
// room's mics. The console shows every mic with its language and level.
// A device that starts as a mic already on air takes it over, and the one
// taken over says so; one more mic than the room allows, and a language the
// room no longer has, are refused with a clear message.
func TestPanel(t *testing.T) {
	ctx, s := startService(t, 150*time.Second)
	r := s.API.CreateRoom(`{"id":"panel","name":"Panel","source_language":"en","languages":[{"code":"es"}],"max_mics":2}`)
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "en", 2, 1)})
	ana := openSpeaker(t, s, b, r, "ana")
	if id := eval[string](ana, `document.getElementById('mic-id').value`); id != "main" {
		t.Errorf("a speaker page starts as mic %q, want main", id)
	}
	setSpeaker(ana, "Ana", "en")
	ana.click("#start")
	ana.waitFor("Ana on air", jsPill+` === 'live'`, 10*time.Second)

	ben := openSpeaker(t, s, b, r, "ben")
	ben.click("#mic-another")
	benMic := eval[string](ben, `document.getElementById('mic-id').value`)
	if benMic == "main" || len(benMic) < 5 {
		t.Fatalf("“Another mic on this panel” made mic %q", benMic)
	}
	setSpeaker(ben, "Ben", "es")
	ben.click("#start")
	ben.waitFor("Ben on air", jsPill+` === 'live'`, 10*time.Second)
	if dis := eval[bool](ben, `document.getElementById('mic-id').disabled && document.getElementById('speaker-name').disabled`); !dis {
		t.Error("the mic name and the speaker's name can be edited while on air (they are said when the mic starts)")
	}

	for _, p := range []*tab{ana, ben} {
		p.waitFor("both mics listed", jsMics+`.sort().join() === `+jsString("main en,"+benMic+" es"), 10*time.Second)
	}
	st := s.API.Status(r.ID)
	if m, ok := st.Mic(benMic); !ok || m.Name != "Ben" || m.Language != "es" {
		t.Errorf("Ben's mic in the status: %+v (live %v)", m, ok)
	}
	if m, ok := st.Mic("main"); !ok || m.Name != "Ana" || m.Language != "en" {
		t.Errorf("Ana's mic in the status: %+v (live %v)", m, ok)
	}

	// Ben switches to English while on air.
	ben.do("switch to English", chromedp.SetValue(chromedp.CSS("#speaker-language"), "en"))
	eval[chromedp.Void](ben, `document.getElementById('speaker-language').dispatchEvent(new Event('change'))`)
	harness.WaitFor(t, 10*time.Second, "Ben's mic in English", func() bool {
		m, _ := s.API.Status(r.ID).Mic(benMic)
		return m.Language == "en"
	})
	ana.waitFor("Ana's page to see Ben in English", jsMics+`.includes(`+jsString(benMic+" en")+`)`, 10*time.Second)

	// The console shows both mics, their languages and levels.
	con := openConsole(t, s, b, "/admin#room="+r.ID, "#mics-body")
	con.waitFor("both mics in the console", `[...document.querySelectorAll('#mics-body tr[data-mic]')]
		.map((tr) => tr.dataset.mic + ' ' + tr.dataset.language).sort().join() === `+jsString("main en,"+benMic+" en"), 10*time.Second)
	con.waitFor("a mic level", `[...document.querySelectorAll('#mics-body [data-testid="mic-level"]')]
		.some((m) => Number(m.getAttribute('aria-valuenow')) > -60)`, 10*time.Second)
	ana.screenshots("speak-panel")
	con.screenshots("console-panel")

	// A third device starts as Ben's mic (the browser remembers the last
	// mic name): it takes that mic over, and Ben's page says so.
	third := openSpeaker(t, s, b, r, "third")
	if id := eval[string](third, `document.getElementById('mic-id').value`); id != benMic {
		t.Fatalf("the third page starts as mic %q, want the remembered %q", id, benMic)
	}
	third.click("#start")
	third.waitFor("the third page on air", jsPill+` === 'live'`, 10*time.Second)
	ben.waitFor("Ben's page told it was taken over", `document.getElementById('page-notice').dataset.reason === 'replaced' &&
		document.getElementById('state-pill').dataset.state === 'idle'`, 10*time.Second)
	third.click("#stop")
	harness.WaitFor(t, 10*time.Second, "the third page's mic off", func() bool { return len(s.API.Status(r.ID).Mics) == 1 })

	// One mic more than the room allows is refused.
	extra := openSpeaker(t, s, b, r, "extra")
	extra.click("#mic-another")
	extra.click("#start")
	extra.waitFor("extra on air", jsPill+` === 'live'`, 10*time.Second)
	third.click("#start") // a third with Ana and extra
	third.waitFor("the third page refused: too many mics", `document.getElementById('page-notice').dataset.reason === 'too_many_mics'`, 10*time.Second)
	third.screenshots("speak-too-many-mics")
	extra.click("#stop")

	// A language the room no longer has is refused.
	if code := s.API.Call("PATCH", "/api/v1/rooms/"+r.ID, `{"languages":[]}`, nil); code != http.StatusOK {
		t.Fatalf("remove Spanish: HTTP %d", code)
	}
	harness.WaitFor(t, 10*time.Second, "the extra mic off", func() bool { return len(s.API.Status(r.ID).Mics) == 1 })
	setSpeaker(third, "Ben", "es") // the page still offers what it loaded
	third.click("#start")
	third.waitFor("the third page refused: Spanish is gone", `document.getElementById('page-notice').dataset.reason === 'bad_language'`, 10*time.Second)
}
