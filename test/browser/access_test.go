package browser

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The pages for everyone: accessibility checks the tests run on every page
// state (axe-core) and a walk of each page by keyboard alone.

// axeVersion is the axe-core that scripts/test installs from the npm
// registry into test/output/node_modules (kept in step with scripts/deps.sh).
const axeVersion = "4.14.1"

var (
	axeOnce   sync.Once
	axeSource string
	axeErr    error
)

// axeScript reads axe-core's script: $BABELCAST_AXE, else the one
// scripts/test installed. A missing axe fails the test with how to get it.
func axeScript(t *testing.T) string {
	t.Helper()
	axeOnce.Do(func() {
		p := os.Getenv("BABELCAST_AXE")
		if p == "" {
			p = filepath.Join("..", "output", "node_modules", "axe-core", "axe.min.js")
		}
		var b []byte
		b, axeErr = os.ReadFile(p)
		axeSource = string(b)
	})
	if axeErr != nil {
		t.Fatalf("axe-core is needed for the accessibility checks and is missing (%v). scripts/test installs it "+
			"(npm install --prefix test/output axe-core@%s), or set BABELCAST_AXE to its axe.min.js.", axeErr, axeVersion)
	}
	return axeSource
}

// axeViolation is the part of an axe-core result the test reports.
type axeViolation struct {
	ID      string   `json:"id"`
	Impact  string   `json:"impact"`
	Help    string   `json:"help"`
	Targets []string `json:"targets"`
}

// jsAxe runs axe-core on the page with the WCAG 2.0–2.2 A and AA rules and
// the best practices, and returns its violations as JSON.
const jsAxe = `axe.run(document, {
	runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
	resultTypes: ['violations'],
}).then((r) => JSON.stringify(r.violations.map((v) => ({
	id: v.id, impact: v.impact || '', help: v.help,
	targets: v.nodes.slice(0, 6).map((n) => n.target.join(' ')),
}))))`

// checkAccess runs axe-core on the page's current state at a phone size and
// at a desktop size, failing the test on any violation, and keeps
// screenshots of both as <state>-phone.png and <state>-desktop.png.
func (tb *tab) checkAccess(state string) {
	tb.t.Helper()
	src := axeScript(tb.t)
	if !eval[bool](tb, `typeof window.axe === 'object'`) {
		eval[chromedp.Void](tb, src+";undefined")
	}
	for _, size := range viewports {
		tb.resize(size)
		var got []axeViolation
		if err := json.Unmarshal([]byte(eval[string](tb, jsAxe)), &got); err != nil {
			tb.fail("axe-core on %s (%s): %v", state, size.suffix, err)
		}
		for _, v := range got {
			tb.t.Errorf("axe-core, %s at %s size: %s (%s): %s — %s", state, size.suffix, v.ID, v.Impact, v.Help, strings.Join(v.Targets, " | "))
		}
		tb.screenshot(state + "-" + size.suffix)
	}
}

// focusStop is one place the Tab key stopped at.
type focusStop struct {
	Name    string `json:"name"`    // id, else tag and text
	Body    bool   `json:"body"`    // focus is on nothing (the document)
	Visible bool   `json:"visible"` // a focus indicator is drawn
	Shown   bool   `json:"shown"`   // the element has a box inside the viewport after scrolling to it
	Again   bool   `json:"again"`   // the walk was here before (it went round)
}

// jsFocusStop describes the focused element: whether it draws a focus
// outline (a language choice's invisible radio draws it on its label's
// box, the next sibling) and whether it is on screen.
const jsFocusStop = `(() => {
	const a = document.activeElement;
	if (!a || a === document.body || a === document.documentElement) return JSON.stringify({body: true});
	const drawn = (el) => {
		const s = getComputedStyle(el);
		return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
	};
	const visible = drawn(a) || (a.matches('.lang-option input') && drawn(a.nextElementSibling));
	const box = (a.matches('.lang-option input') ? a.parentElement : a).getBoundingClientRect();
	const shown = box.width > 0 && box.height > 0 && box.bottom > 0 && box.top < innerHeight;
	const text = (a.textContent || a.value || '').trim().slice(0, 30);
	const again = a.hasAttribute('data-kb-walk');
	a.setAttribute('data-kb-walk', '');
	return JSON.stringify({name: a.id || (a.tagName.toLowerCase() + ':' + text), visible, shown, again});
})()`

// walkKeyboard presses Tab from the top of the page until the focus
// leaves it, and checks every stop shows where the focus is. It returns
// the stops, by name, in order.
func (tb *tab) walkKeyboard(state string) []string {
	tb.t.Helper()
	tb.resize(viewports[1])
	// Start from the top: focusing the body makes it the place Tab goes on from.
	const forget = `document.querySelectorAll('[data-kb-walk]').forEach((e) => e.removeAttribute('data-kb-walk'))`
	eval[chromedp.Void](tb, `(() => { `+forget+`; const b = document.body; b.tabIndex = -1; b.focus(); b.removeAttribute('tabindex'); scrollTo(0, 0); })()`)
	defer eval[chromedp.Void](tb, forget)
	var names []string
	for i := 0; i < 80; i++ {
		tb.do("press Tab", chromedp.KeyEvent(kb.Tab))
		var s focusStop
		if err := json.Unmarshal([]byte(eval[string](tb, jsFocusStop)), &s); err != nil {
			tb.fail("read focus: %v", err)
		}
		if s.Body || s.Again {
			break
		}
		names = append(names, s.Name)
		if !s.Visible {
			tb.t.Errorf("%s: keyboard stop %d (%s) shows no focus indicator", state, i+1, s.Name)
		}
		if !s.Shown {
			tb.t.Errorf("%s: keyboard stop %d (%s) is not on screen", state, i+1, s.Name)
		}
		if i == 0 || i%4 == 0 {
			tb.screenshot(fmt.Sprintf("%s-keyboard-%02d", state, i+1))
		}
	}
	if len(names) == 0 {
		tb.t.Errorf("%s: the Tab key reaches nothing", state)
	}
	tb.t.Logf("%s: keyboard stops %v", state, names)
	return names
}

// requireStops fails the test when a control is not among the keyboard stops.
func requireStops(t *testing.T, state string, stops []string, want ...string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, s := range stops {
			if s == w {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: the keyboard never reaches #%s (stops: %v)", state, w, stops)
		}
	}
}

// press sends keys (kb.Enter, " ", kb.ArrowDown …) to the focused element.
func (tb *tab) press(what, keys string) {
	tb.t.Helper()
	tb.do(what, chromedp.KeyEvent(keys))
}

// focus puts the keyboard focus on sel, as if tabbed to.
func (tb *tab) focus(sel string) {
	tb.t.Helper()
	tb.do("focus "+sel, chromedp.Focus(chromedp.CSS(sel)))
}

// jsFocused is the id of the focused element.
const jsFocused = `(document.activeElement && document.activeElement.id) || ''`

// jsDir is the page's language and computed direction, "lang/dir".
const jsDir = `document.documentElement.lang + '/' + getComputedStyle(document.body).direction`
