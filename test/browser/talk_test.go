package browser

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// joinTalk opens the conversation page of room r in browser b (one phone),
// picks lang and types name, starts talking, and waits until the phone is
// live: its mic on air and its channel open.
func joinTalk(t *testing.T, s *service.Service, b context.Context, r harness.Room, who, lang, name string) *tab {
	t.Helper()
	p := newTab(b, t, who)
	p.navigate(s.URL()+"/rooms/"+r.ID+"/talk#key="+r.SpeakerKey, "#setup")
	if loc := eval[string](p, `location.href`); strings.Contains(loc, r.SpeakerKey) {
		t.Errorf("%s: the key stays in the address bar: %s", who, loc)
	}
	tapListeners(p)
	p.click("#lang-" + lang)
	p.do("type the name", chromedp.SendKeys(chromedp.CSS("#talk-name"), name))
	p.click("#talk-start")
	p.waitFor(who+"'s phone to be live", jsPill+` === 'live'`, 15*time.Second)
	if pt := eval[string](p, `document.getElementById('talk').dataset.passthrough`); pt != "false" {
		t.Errorf("%s listens with passthrough %q: a participant must not hear the original (their own voice)", who, pt)
	}
	return p
}

// jsLines is the caption lines a conversation page shows, as
// [side, who, text] triples.
const jsLines = `[...document.querySelectorAll('#conversation p')].map((p) =>
	[p.classList.contains('mine') ? 'mine' : 'theirs', (p.querySelector('.who') || {}).textContent || '', p.querySelector('.said').textContent])`

// TestConversation is the reference case of the conversation page: two
// phones on a table, one English, one Korean. Each phone is a mic in its
// owner's language and hears its language's channel without the
// original, so each hears the other interpreted, with their name on the
// captions, and never its own voice.
//
// The two phones are two browsers (the fake microphone's file is per
// browser process). Each person's voice is a tone no channel speaks (Alex
// the "de" tone, Min-jun the "fr" one): the fake model interprets any
// speech into its channel's language tone, so the audio a phone receives
// tells whether it is an interpretation (en, ko) or someone's voice.
func TestConversation(t *testing.T) {
	ctx, s := startService(t, 150*time.Second)
	r := s.API.CreateRoom(`{"id":"table","name":"Table for two","source_language":"en","languages":[{"code":"ko"}]}`)
	alexB := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "de", 2, 1)})
	minB := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "fr", 2, 1)})

	alex := joinTalk(t, s, alexB, r, "alex", "en", "Alex")
	min := joinTalk(t, s, minB, r, "minjun", "ko", "Min-jun")

	// Both are mics of the room, each in its language, under its name.
	harness.WaitFor(t, 10*time.Second, "both phones as mics of the room", func() bool { return len(s.API.Status(r.ID).Mics) == 2 })
	for _, m := range s.API.Status(r.ID).Mics {
		want := map[string]string{"Alex": "en", "Min-jun": "ko"}[m.Name]
		if !strings.HasPrefix(m.Mic, "talk-") || want == "" || m.Language != want {
			t.Errorf("mic %+v: want talk-… named Alex (en) or Min-jun (ko)", m)
		}
	}

	// Each reads the other's words in their own language, under the
	// other's name, and their own words (the original's captions) as theirs.
	alex.waitFor("Min-jun's words in English on Alex's phone", jsLines+`.some(([side, who, said]) =>
		side === 'theirs' && who === 'Min-jun' && said.includes('[en] sentence'))`, 30*time.Second)
	min.waitFor("Alex's words in Korean on Min-jun's phone", jsLines+`.some(([side, who, said]) =>
		side === 'theirs' && who === 'Alex' && said.includes('[ko] sentence'))`, 30*time.Second)
	alex.waitFor("Alex's own words on Alex's phone", jsLines+`.some(([side, who, said]) =>
		side === 'mine' && who === 'You' && said.includes('source sentence'))`, 15*time.Second)

	// Each hears the other interpreted, and nobody's voice itself: not the
	// other's, and above all not their own.
	for _, p := range []struct {
		tab                  *tab
		lang, own, other, in string
	}{{alex, "en", "de", "fr", "ko"}, {min, "ko", "fr", "de", "en"}} {
		p.tab.waitFor("a second of interpretation", `window.__tap.reduce((n, r) => n + r.bytes, 0) > 48000`, 20*time.Second)
		got := voices(heard(p.tab, p.lang), p.lang, p.own, p.other, p.in)
		t.Logf("%s's phone heard: %s", p.tab.name, fmtVoices(got))
		if got[p.lang] < 10 {
			t.Errorf("%s's phone heard %.1f s of interpretation into %s, want at least 1 s", p.tab.name, float64(got[p.lang])/10, p.lang)
		}
		if got[p.own] > 0 {
			t.Errorf("%s's phone played %.1f s of its owner's own voice back", p.tab.name, float64(got[p.own])/10)
		}
		if got[p.other] > 0 || got[p.in] > 0 {
			t.Errorf("%s's phone heard the other's original voice (%.1f s) or the other language (%.1f s)",
				p.tab.name, float64(got[p.other])/10, float64(got[p.in])/10)
		}
	}

	alex.screenshots("talk-en")
	min.screenshots("talk-ko")

	// Leaving takes the phone's mic off the room.
	alex.click("#talk-leave")
	harness.WaitFor(t, 10*time.Second, "Alex's mic gone", func() bool { return len(s.API.Status(r.ID).Mics) == 1 })
	alex.waitFor("the setup again", `!document.getElementById('setup').hidden`, 5*time.Second)
}
