package browser

import (
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/babelcast/babelcast/test/harness"
)

// TestSpeakerKeyForm walks the speaker key on the two pages that take it,
// the speaker and the conversation pages (SpeakerKey in mic.js): a link
// without the key asks for it, a wrong key is refused in the form, the
// right one opens the page, a link whose key the organizers rotated asks
// again at once, and a room that does not exist is said so.
func TestSpeakerKeyForm(t *testing.T) {
	ctx, s := startService(t, 90*time.Second)
	r := s.API.CreateRoom(`{"id":"keys","name":"Keys","source_language":"en","languages":[{"code":"es"}]}`)
	old := r.SpeakerKey
	b := newBrowser(ctx, t, browserOptions{})
	// A refused key check is a failed load in the console: expected here.
	refused := allowRule{regexp.MustCompile(`status of 40[134] .*/api/v1/rooms/(keys/speak|nope/public)`), "a key or room refused on purpose"}
	pages := []struct{ path, input, opened string }{
		{"/speak", "#speaker-key", "console"},
		{"/talk", "#talk-key", "setup"},
	}
	jsShown := func(id string) string { return `!document.getElementById('` + id + `').hidden` }

	for _, pg := range pages {
		p := newTab(b, t, pg.path, refused)
		p.navigate(s.URL()+"/rooms/keys"+pg.path, "#key-form")
		p.do("type a wrong key", chromedp.SendKeys(chromedp.CSS(pg.input), "not-the-key"), chromedp.Click(chromedp.CSS("#key-submit")))
		p.waitFor(pg.path+": the wrong key refused in the form",
			jsShown("key-error")+` && document.querySelector('`+pg.input+`').getAttribute('aria-invalid') === 'true'`, 10*time.Second)
		p.do("type the key", chromedp.SetValue(chromedp.CSS(pg.input), r.SpeakerKey), chromedp.Click(chromedp.CSS("#key-submit")))
		p.waitFor(pg.path+": the page opened with the key", `document.getElementById('key-form').hidden && `+jsShown(pg.opened), 10*time.Second)
		if inv := eval[bool](p, `document.querySelector('`+pg.input+`').hasAttribute('aria-invalid')`); inv {
			t.Errorf("%s: the accepted key's input is still marked invalid", pg.path)
		}
	}

	var rotated harness.Room
	if code := s.API.Call("PATCH", "/api/v1/rooms/keys", `{"rotate_speaker_key":true}`, &rotated); code != 200 || rotated.SpeakerKey == old {
		t.Fatalf("rotate the speaker key: HTTP %d", code)
	}
	for _, pg := range pages {
		p := newTab(b, t, pg.path+" (old link)", refused)
		p.navigate(s.URL()+"/rooms/keys"+pg.path+"#key="+old, "#key-form")
		p.waitFor(pg.path+": the old link said to be stale",
			`/no longer valid/.test(document.getElementById('key-error').textContent) && !`+jsShown(pg.opened), 10*time.Second)

		p = newTab(b, t, pg.path+" (no room)", refused)
		p.navigate(s.URL()+"/rooms/nope"+pg.path+"#key="+rotated.SpeakerKey, "#page-notice")
		p.waitFor(pg.path+": no such room", `/no room/.test(document.getElementById('page-notice').textContent) && document.getElementById('key-form').hidden`, 10*time.Second)
	}
}
