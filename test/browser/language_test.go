package browser

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// TestAttendeeInTheirLanguage is the attendee flow: a Chromium set
// to Spanish (es-ES) joins a room that offers Spanish and Arabic. The join
// page and the attendee page speak Spanish (lang="es") before any choice;
// choosing the Arabic channel turns the page and its captions right to
// left. Every state passes axe-core at phone and desktop size, and is
// walked and worked by keyboard alone with the focus visible at every stop.
func TestAttendeeInTheirLanguage(t *testing.T) {
	axeScript(t)
	ctx, s := startService(t, 240*time.Second)
	r := s.API.CreateRoom(`{"id":"charla","name":"Charla de apertura","source_language":"en","languages":[{"code":"es"},{"code":"ar"}],"questions":true,"record":true}`)
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "en", 3, 1), lang: "es-ES"})
	t.Logf("screenshots: %s", absScreenshotDir())

	// ---- join page: Spanish from the browser's language ----
	j := newTab(b, t, "join")
	j.navigate(s.URL()+"/", "#room-code")
	j.waitFor("the join page in Spanish", `document.documentElement.lang === 'es' &&
		document.querySelector('h1').textContent === 'Escucha una charla en tu idioma'`, 5*time.Second)
	if got := eval[string](j, `document.title`); got != "Entrar a una charla · babelcast" {
		t.Errorf("join page title %q, want the Spanish one", got)
	}
	j.checkAccess("es-join")
	requireStops(t, "join", j.walkKeyboard("es-join"), "room-code", "join-submit")
	// An empty code, submitted with the keyboard: a Spanish error, focus back in the field.
	j.focus("#room-code")
	j.press("submit with Enter", kb.Enter)
	j.waitFor("the Spanish join error", `document.getElementById('join-error').textContent.startsWith('Escribe un código de sala')`, 5*time.Second)
	if f := eval[string](j, jsFocused); f != "room-code" {
		t.Errorf("after the join error the focus is on %q, want the room code field", f)
	}
	j.checkAccess("es-join-error")

	// ---- a speaker on air, for captions ----
	sp := newTab(b, t, "speaker")
	sp.navigate(s.URL()+"/rooms/"+r.ID+"/speak#key="+r.SpeakerKey, "#start")
	sp.waitFor("the Start button to be enabled", `!document.getElementById('start').disabled`, 5*time.Second)
	sp.focus("#start")
	sp.press("start with the keyboard", kb.Enter)
	sp.waitFor("the speaker to be on air", jsPill+` === 'live'`, 10*time.Second)
	// Start disabled itself: the focus went on to Stop, not to the page.
	if f := eval[string](sp, jsFocused); f != "stop" && f != "mute" {
		t.Errorf("after Start the focus is on %q, want Stop (or Mute)", f)
	}

	// ---- attendee page: Spanish preselected, interface Spanish ----
	a := newTab(b, t, "attendee")
	a.navigate(s.URL()+"/rooms/"+r.ID, "#play")
	a.waitFor("the attendee page in Spanish with Español chosen", `document.documentElement.lang === 'es' &&
		document.getElementById('lang-es').checked &&
		document.getElementById('lang-legend').textContent === 'Idioma' &&
		document.getElementById('play-label').textContent === 'Reproducir'`, 5*time.Second)
	for sel, want := range map[string]string{
		`document.querySelector('label[for=volume] [data-i18n]').textContent`:       "Volumen",
		`document.querySelector('label[for=original-mix] [data-i18n]').textContent`: "Original de fondo",
		`document.getElementById('captions-heading').textContent`:                   "Subtítulos",
		`document.getElementById('captions-toggle').textContent`:                    "Ocultar",
		`document.getElementById('captions').dataset.empty`:                         "Los subtítulos aparecen aquí mientras habla el ponente.",
		`document.getElementById('state-pill').textContent`:                         "Pulsa reproducir",
		`document.getElementById('ask-open').textContent`:                           "Hacer una pregunta",
		`document.getElementById('recorded-note').textContent`:                      "Esta charla se graba.",
	} {
		if got := eval[string](a, sel); got != want {
			t.Errorf("attendee page: %s is %q, want %q", sel, got, want)
		}
	}
	a.checkAccess("es-listen")
	stops := a.walkKeyboard("es-listen")
	requireStops(t, "attendee", stops, "lang-es", "play", "volume", "original-mix", "caption-smaller", "caption-larger", "captions-toggle", "ask-open")

	// Play with the keyboard; the pill and captions come in Spanish.
	a.focus("#play")
	a.press("play with Enter", kb.Enter)
	a.waitFor("live, in Spanish", `document.getElementById('state-pill').textContent === 'En directo'`, 20*time.Second)
	a.waitFor("Spanish captions", jsCaptions+`.includes('[es] sentence')`, 15*time.Second)
	if got := eval[string](a, `document.getElementById('play-label').textContent`); got != "Pausa" {
		t.Errorf("the play button says %q while playing, want Pausa", got)
	}
	a.checkAccess("es-listen-live")

	// A+ pressed to its limit hands the focus to A−.
	a.focus("#caption-larger")
	for i := 0; i < 8 && !eval[bool](a, `document.getElementById('caption-larger').disabled`); i++ {
		a.press("larger captions", kb.Enter)
	}
	if f := eval[string](a, jsFocused); f != "caption-smaller" {
		t.Errorf("A+ at its limit left the focus on %q, want caption-smaller", f)
	}
	for i := 0; i < 8 && !eval[bool](a, `document.getElementById('caption-smaller').disabled`); i++ {
		a.press("smaller captions", kb.Enter)
	}
	if f := eval[string](a, jsFocused); f != "caption-larger" {
		t.Errorf("A− at its limit left the focus on %q, want caption-larger", f)
	}

	// Hidden captions are not read out: the live region stays empty while
	// new lines arrive, and fills again once they are shown.
	a.focus("#captions-toggle")
	a.press("hide captions", kb.Enter)
	a.waitFor("captions hidden", `document.getElementById('captions').hidden && document.getElementById('captions-toggle').textContent === 'Mostrar'`, 5*time.Second)
	before := eval[string](a, jsCaptions)
	a.waitFor("new caption lines while hidden", jsCaptions+` !== `+jsString(before), 15*time.Second)
	a.waitFor("a final line while hidden", `[...document.querySelectorAll('#captions p')].some((p) => !p.classList.contains('partial'))`, 15*time.Second)
	if n := eval[float64](a, `document.getElementById('captions-live').childElementCount`); n != 0 {
		t.Errorf("hidden captions were announced: %v lines in the live region", n)
	}
	a.press("show captions", kb.Enter)
	a.waitFor("captions announced again", `document.getElementById('captions-live').childElementCount > 0`, 20*time.Second)

	// ---- the Arabic channel, chosen with the arrow keys ----
	a.focus("#lang-es")
	a.press("next language", kb.ArrowDown)
	a.waitFor("the page in Arabic, right to left", jsDir+` === 'ar/rtl' &&
		document.getElementById('lang-ar').checked &&
		document.getElementById('lang-legend').textContent === 'اللغة'`, 5*time.Second)
	if f := eval[string](a, jsFocused); f != "lang-ar" {
		t.Errorf("after choosing Arabic the focus is on %q, want lang-ar", f)
	}
	a.waitFor("Arabic captions, right to left", `[...document.querySelectorAll('#captions p[lang=ar]')].some((p) =>
		getComputedStyle(p).direction === 'rtl' && p.textContent.includes('[ar]'))`, 20*time.Second)
	for expr, want := range map[string]string{
		`getComputedStyle(document.getElementById('lang-list')).direction`:                          "rtl",
		`getComputedStyle(document.querySelector('.lang-option[data-lang=es] bdi')).direction`:      "ltr",
		`getComputedStyle(document.querySelector('.lang-option[data-lang=es] span')).direction`:     "rtl",
		`getComputedStyle(document.querySelector('.lang-option[data-lang=ar] bdi')).direction`:      "rtl",
		`getComputedStyle(document.getElementById('captions')).direction`:                           "rtl",
		`document.getElementById('state-pill').textContent`:                                         "مباشر",
		`String(document.querySelector('.lang-option[data-lang=en] small').textContent.length > 0)`: "true",
		`document.querySelector('.lang-option[data-lang=en] small').lang`:                           "ar",
	} {
		if got := eval[string](a, expr); got != want {
			t.Errorf("Arabic page: %s is %q, want %q", expr, got, want)
		}
	}
	// The page mirrors: the play button's end is on the left now.
	if !eval[bool](a, `(() => { const l = document.getElementById('lang-list').getBoundingClientRect();
		const first = document.querySelector('.lang-option').getBoundingClientRect();
		return first.right > l.left + l.width / 2; })()`) {
		t.Error("the first language option is not on the right of an Arabic page")
	}
	// In forced colours (Windows high contrast) the chosen language still stands out.
	a.do("emulate forced colours", forcedColors("active"))
	chosen := eval[string](a, `getComputedStyle(document.querySelector('#lang-ar + span')).backgroundColor`)
	other := eval[string](a, `getComputedStyle(document.querySelector('#lang-es + span')).backgroundColor`)
	if chosen == other {
		t.Errorf("in forced colours the chosen language looks like the others (background %s)", chosen)
	}
	a.screenshots("ar-listen-forced-colors")
	a.do("stop emulating forced colours", forcedColors("none"))
	if n := eval[float64](a, `[...document.querySelectorAll('[data-testid=earlier-line]')].filter((p) => getComputedStyle(p).direction !== 'rtl').length`); n > 0 {
		t.Errorf("%v of the Arabic channel's earlier lines are not right to left", n)
	}
	a.checkAccess("ar-listen-live")
	requireStops(t, "attendee (Arabic)", a.walkKeyboard("ar-listen"), "lang-ar", "play", "volume", "original-mix", "captions-toggle")

	// Back to Spanish with the keyboard: the page follows.
	a.focus("#lang-ar")
	a.press("previous language", kb.ArrowUp)
	a.waitFor("the page back in Spanish", jsDir+` === 'es/ltr' && document.getElementById('state-pill').textContent !== 'مباشر'`, 5*time.Second)
	a.focus("#play")
	a.press("pause", kb.Enter)
	a.waitFor("paused", `document.getElementById('play-label').textContent === 'Reproducir'`, 5*time.Second)

	// ---- the question form ----
	a.focus("#ask-open")
	a.press("open the question form", kb.Enter)
	a.waitFor("the question form", `!document.getElementById('ask-form').hidden && document.activeElement.id === 'ask-name'`, 5*time.Second)
	a.checkAccess("es-ask-form")
	requireStops(t, "question form", a.walkKeyboard("es-ask-form"), "ask-name", "ask-submit", "ask-cancel")
}

// TestPagesByKeyboard walks the conversation, speaker, booth and console
// pages by keyboard and checks each with axe-core: the conversation page
// follows the browser's language (Spanish), the others stay English.
func TestPagesByKeyboard(t *testing.T) {
	axeScript(t)
	ctx, s := startService(t, 180*time.Second)
	r := s.API.CreateRoom(`{"id":"mesa","name":"Mesa redonda","source_language":"en","languages":[{"code":"es","booth":true},{"code":"ar"}]}`)
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "en", 2, 1), lang: "es-ES"})
	t.Logf("screenshots: %s", absScreenshotDir())

	// Speaker page, left on air: the conversation hears it interpreted.
	sp := newTab(b, t, "speaker")
	sp.navigate(s.URL()+"/rooms/"+r.ID+"/speak#key="+r.SpeakerKey, "#start")
	sp.waitFor("the Start button to be enabled", `!document.getElementById('start').disabled`, 5*time.Second)
	sp.checkAccess("speak")
	requireStops(t, "speaker", sp.walkKeyboard("speak"), "speaker-name", "speaker-language", "mic-id", "start")
	sp.focus("#start")
	sp.press("start", kb.Enter)
	sp.waitFor("on air", jsPill+` === 'live'`, 10*time.Second)
	// Conversation: Spanish before a choice, Arabic once Arabic is chosen.
	p := newTab(b, t, "talk")
	p.navigate(s.URL()+"/rooms/"+r.ID+"/talk#key="+r.SpeakerKey, "#setup")
	p.waitFor("the conversation page in Spanish", `document.documentElement.lang === 'es' &&
		document.getElementById('talk-start').textContent === 'Empezar a hablar'`, 5*time.Second)
	p.checkAccess("es-talk-setup")
	requireStops(t, "conversation", p.walkKeyboard("es-talk-setup"), "lang-en", "talk-name", "talk-start")
	p.focus("#lang-en")
	p.press("pick Arabic", kb.ArrowUp) // en, es, ar: up from en wraps to ar
	p.waitFor("the conversation page in Arabic", jsDir+` === 'ar/rtl'`, 5*time.Second)
	p.checkAccess("ar-talk-setup")
	p.focus("#talk-start")
	p.press("start talking", kb.Enter)
	p.waitFor("the phone live", jsPill+` === 'live'`, 15*time.Second)
	if f := eval[string](p, jsFocused); f != "talk-mute" {
		t.Errorf("once the conversation started the focus is on %q, want talk-mute (the setup is gone)", f)
	}
	p.waitFor("Arabic lines in the conversation", `[...document.querySelectorAll('#conversation p')].some((p) => getComputedStyle(p).direction === 'rtl')`, 20*time.Second)
	p.checkAccess("ar-talk-live")
	requireStops(t, "conversation (live)", p.walkKeyboard("ar-talk-live"), "talk-language", "talk-mute", "talk-leave")
	p.focus("#talk-leave")
	p.press("leave", kb.Enter)
	p.waitFor("back to the setup with the focus on Start", `document.activeElement.id === 'talk-start'`, 5*time.Second)

	// Booth page (an interpreter's; English): enter, take the air and hand
	// over by keyboard, the focus never dropped.
	bo := newTab(b, t, "booth")
	bo.navigate(r.Links.Booths["es"], "#booth-start")
	bo.checkAccess("booth-setup")
	requireStops(t, "booth", bo.walkKeyboard("booth-setup"), "booth-name", "booth-hear", "booth-start")
	bo.focus("#booth-start")
	bo.press("enter the booth", kb.Enter)
	bo.waitFor("in the booth, Take enabled", jsPill+` === 'live' && !document.getElementById('take').disabled`, 15*time.Second)
	if f := eval[string](bo, jsFocused); f != "on-air" {
		t.Errorf("after entering the booth the focus is on %q, want the on-air light", f)
	}
	bo.checkAccess("booth-off-air")
	requireStops(t, "booth (in)", bo.walkKeyboard("booth-off-air"), "take", "volume", "leave")
	bo.focus("#take")
	bo.press("take the air", kb.Enter)
	bo.waitFor("on air, focus on Hand over", `document.getElementById('on-air').dataset.onAir === 'true' && document.activeElement.id === 'hand-over'`, 10*time.Second)
	bo.checkAccess("booth-on-air")
	bo.press("hand over", kb.Enter)
	bo.waitFor("off air, focus on Take", `document.getElementById('on-air').dataset.onAir === 'false' && document.activeElement.id === 'take'`, 10*time.Second)
	bo.focus("#leave")
	bo.press("leave the booth", kb.Enter)
	bo.waitFor("out of the booth, focus on Enter", `document.activeElement.id === 'booth-start'`, 5*time.Second)

	// The speaker stops: the focus goes back to Start.
	sp.focus("#stop")
	sp.press("stop", kb.Enter)
	sp.waitFor("off air, focus on Start", `document.getElementById('stop').disabled && document.activeElement.id === 'start'`, 5*time.Second)

	// Console: sign in by keyboard, the focus lands on the room list.
	c := newTab(b, t, "console")
	c.navigate(s.URL()+"/admin", "#admin-token")
	c.checkAccess("admin-signin")
	c.do("type the token", chromedp.SendKeys(chromedp.CSS("#admin-token"), service.AdminToken))
	c.press("sign in", kb.Enter)
	c.waitFor("signed in, focus on the rooms heading", `!document.getElementById('app').hidden && document.activeElement.id === 'rooms-title'`, 10*time.Second)
	c.waitFor("the room in the list", `!!document.querySelector('#rooms-list li')`, 5*time.Second)
	c.do("open the room", chromedp.Navigate(s.URL()+"/admin#room="+r.ID))
	c.waitFor("the room's details", `!document.getElementById('room-detail').hidden`, 10*time.Second)
	for _, sel := range []string{"#link-speak", "#link-talk", "[data-testid=link-booth]"} {
		if got := eval[string](c, `String(document.querySelector(`+jsString(sel)+`).getAttribute('aria-hidden'))`); got != "true" {
			t.Errorf("the blurred secret link %s is not hidden from screen readers (aria-hidden=%q)", sel, got)
		}
	}
	c.checkAccess("admin-room")
	requireStops(t, "console", c.walkKeyboard("admin-room"), "new-room", "edit-room", "delete-room", "show-speak")

	// Edit dialog: a focused field is never under the sticky Cancel/Save bar.
	c.focus("#edit-room")
	c.press("edit", kb.Enter)
	c.waitFor("the dialog", `document.getElementById('room-dialog').open`, 5*time.Second)
	c.resize(viewports[0])
	c.checkAccess("admin-edit")
	sawAlwaysOn := false
	for i := 0; i < 40; i++ {
		c.press("Tab in the dialog", kb.Tab)
		hidden := eval[string](c, `(() => {
			const a = document.activeElement, bar = document.querySelector('#room-dialog .dialog-actions');
			const d = document.getElementById('room-dialog');
			if (!a || a === d || bar.contains(a) || !d.contains(a)) return '';
			const r = a.getBoundingClientRect(), b = bar.getBoundingClientRect();
			return r.bottom > b.top + 1 ? (a.id || a.outerHTML.slice(0, 60)) : '';
		})()`)
		if hidden != "" {
			t.Errorf("in the edit dialog %s is under the Cancel/Save bar", hidden)
		}
		var stop focusStop
		if err := json.Unmarshal([]byte(eval[string](c, jsFocusStop)), &stop); err != nil {
			t.Fatalf("read focus: %v", err)
		}
		if !stop.Body && stop.Name != "room-dialog" && !stop.Visible {
			t.Errorf("in the edit dialog %s shows no focus indicator", stop.Name)
		}
		if eval[bool](c, `document.activeElement.dataset.testid === 'lang-always-on'`) {
			sawAlwaysOn = true
		}
	}
	if !sawAlwaysOn {
		t.Error("the keyboard never reached a language's Always on checkbox in the edit dialog")
	}
	c.focus("#room-cancel")
	c.press("cancel the dialog", kb.Enter)
	c.waitFor("the dialog closed", `!document.getElementById('room-dialog').open`, 5*time.Second)
	c.resize(viewports[1])

	// Delete by keyboard: the focus goes to the room list, not the page.
	c.focus("#delete-room")
	c.press("delete", kb.Enter)
	c.waitFor("the confirmation", `document.getElementById('confirm-dialog').open`, 5*time.Second)
	c.focus("#confirm-ok")
	c.press("confirm", kb.Enter)
	c.waitFor("deleted, focus on the rooms heading", `document.getElementById('room-detail').hidden && document.activeElement.id === 'rooms-title'`, 10*time.Second)
	c.checkAccess("admin-deleted")
}

func absScreenshotDir() string {
	p, err := filepath.Abs(screenshotDir)
	if err != nil {
		return screenshotDir
	}
	return p
}

// forcedColors emulates the forced-colors media feature ("active" or "none").
func forcedColors(value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "forced-colors", Value: value}},
		})
		return err
	})
}

// TestJoinInArabic opens the join page in a Chromium set to Arabic: the
// page is Arabic and mirrored before anything is chosen, and its errors
// are Arabic too.
func TestJoinInArabic(t *testing.T) {
	axeScript(t)
	ctx, s := startService(t, 60*time.Second)
	b := newBrowser(ctx, t, browserOptions{lang: "ar-EG"})
	j := newTab(b, t, "join")
	j.navigate(s.URL()+"/", "#room-code")
	j.waitFor("the join page in Arabic, right to left", jsDir+` === 'ar/rtl' &&
		document.querySelector('h1').textContent === 'استمع إلى محاضرة بلغتك'`, 5*time.Second)
	// The form's start is on the right.
	if !eval[bool](j, `(() => { const l = document.querySelector('label[for=room-code]').getBoundingClientRect();
		const f = document.getElementById('join-form').getBoundingClientRect();
		return l.right > f.left + f.width / 2; })()`) {
		t.Error("the room code label is not on the right of an Arabic page")
	}
	j.checkAccess("ar-join")
	requireStops(t, "join (Arabic)", j.walkKeyboard("ar-join"), "room-code", "join-submit")
	j.do("type a code that is none", chromedp.SendKeys(chromedp.CSS("#room-code"), "no room!"))
	j.press("submit", kb.Enter)
	j.waitFor("the Arabic error", `document.getElementById('join-error').textContent.startsWith('هذا ليس رمز قاعة')`, 5*time.Second)
	j.checkAccess("ar-join-error")

	// The text follows the browser's text size (24 px instead of 16 px).
	if got := eval[string](j, `getComputedStyle(document.documentElement).fontSize`); got != "18px" {
		t.Errorf("root font size %s at the browser's default text size, want 18px", got)
	}
	j.do("set a larger text size", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.SetFontSizes, page.SetFontSizesParams{FontSizes: &page.FontSizes{Standard: 24}})
		return err
	}))
	j.waitFor("the page to follow the text size", `getComputedStyle(document.documentElement).fontSize === '27px'`, 5*time.Second)
	j.screenshots("ar-join-large-text")
}

// TestNoEnglishBeforeTheCatalog: a page in the attendee's language shows
// nothing until its catalog is in, rather than English for a moment. The
// page records, at every frame it paints until the catalog is in, whether
// its body shows and what its heading says.
func TestNoEnglishBeforeTheCatalog(t *testing.T) {
	ctx, s := startService(t, 60*time.Second)
	b := newBrowser(ctx, t, browserOptions{lang: "de-DE"})
	j := newTab(b, t, "join")
	const watch = `window.__frames = [];
(function watch() {
  const root = document.documentElement;
  window.__frames.push({
    shown: !!document.body && getComputedStyle(document.body).visibility === 'visible',
    heading: (document.querySelector('h1') || {}).textContent || '',
  });
  if (!root || !root.dataset.uiLang) requestAnimationFrame(watch);
})();`
	j.do("watch every frame", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watch})
		return err
	}))
	j.navigate(s.URL()+"/", "#room-code")
	j.waitFor("the join page in German", `document.documentElement.dataset.uiLang === 'de'`, 5*time.Second)
	type frame struct {
		Shown   bool   `json:"shown"`
		Heading string `json:"heading"`
	}
	frames := eval[[]frame](j, `window.__frames`)
	if len(frames) == 0 {
		t.Fatal("no frame painted before the catalog was in: the watch did not run")
	}
	english := eval[string](j, `document.querySelector('h1').dataset.i18nEn`)
	for i, f := range frames {
		if f.Shown && f.Heading == english {
			t.Fatalf("frame %d of %d showed the English heading %q before the German catalog was in", i+1, len(frames), f.Heading)
		}
	}
	t.Logf("%d frames painted hidden before the catalog was in", len(frames))
}
