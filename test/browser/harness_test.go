// Package browser drives babelcast's pages in Debian's Chromium (headless,
// through the DevTools protocol with chromedp) against the real service
// running in-process, with the fake OpenAI Realtime server as the engine
// and Chromium's fake microphone playing speech from a WAV file.
//
// The tests click through the pages as people do, fail on any script error
// a page throws, and save screenshots of every page at a phone and a desktop
// size into test/output/screenshots/ for a person to look at.
//
// They run one at a time (no t.Parallel): a Chromium playing and capturing
// audio takes most of a core, and two at once on this project's 2-core
// machines starve the packages tested beside this one (the offline
// engine's decoders then fall behind real time) for a gain of seconds.
package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// chromiumPath is Debian's Chromium, which scripts/test installs. The
// environment variable BABELCAST_CHROMIUM names another binary.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the pages' pictures go (gitignored test output).
var screenshotDir = filepath.Join("..", "output", "screenshots")

// ---------- the service ----------

// startService begins a page test: it fails at once where Chromium is
// missing, bounds the whole test, browser included, by d (the returned
// context), and runs babelcast in-process with the fake Realtime server as
// its engine.
func startService(t *testing.T, d time.Duration) (context.Context, *service.Service) {
	t.Helper()
	return startServiceWith(t, d, nil)
}

// startServiceWith is startService with the configuration adjusted by
// config (nil: as startService).
func startServiceWith(t *testing.T, d time.Duration, config func(*app.Config)) (context.Context, *service.Service) {
	t.Helper()
	requireChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx, service.Start(t, service.Options{
		Fake: &fakerealtime.Options{},
		Config: func(c *app.Config) {
			c.Node = "browser-test"
			if config != nil {
				config(c)
			}
		},
	})
}

// ---------- the browser ----------

type browserOptions struct {
	// micWAV, when set, is what the fake microphone plays (in a loop).
	micWAV string
	// lang is the browser's language (its navigator.languages); en-US when empty.
	lang string
}

// requireChromium fails the test (it does not skip it: a machine without
// Chromium does not test the pages) when Chromium is missing, and returns its
// path.
func requireChromium(t *testing.T) string {
	t.Helper()
	exe := chromiumPath
	if v := os.Getenv("BABELCAST_CHROMIUM"); v != "" {
		exe = v
	}
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("Chromium is needed for the browser tests and is missing (%v). "+
			"Install it with `apt-get install -y chromium` (scripts/test does), or set BABELCAST_CHROMIUM to a Chromium binary.", err)
	}
	return exe
}

// newBrowser starts a fresh headless Chromium (its own profile) for the
// test, closed at the end. ctx bounds its whole life, so a hung browser
// fails the test instead of hanging it. A missing Chromium fails the test.
func newBrowser(ctx context.Context, t *testing.T, o browserOptions) context.Context {
	t.Helper()
	exe := requireChromium(t)
	lang := o.lang
	if lang == "" {
		lang = "en-US"
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("lang", lang),
		chromedp.Flag("accept-lang", lang), // navigator.languages in headless mode
		chromedp.WindowSize(1280, 800),
	)
	if o.micWAV != "" {
		opts = append(opts,
			chromedp.Flag("use-fake-ui-for-media-stream", true),
			chromedp.Flag("use-fake-device-for-media-stream", true),
			chromedp.Flag("use-file-for-fake-audio-capture", o.micWAV),
		)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start Chromium (%s): %v", exe, err)
	}
	return bctx
}

// tab is one page in the browser, with what its console said.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu       sync.Mutex
	problems []string // script errors and failed loads, unless allowed
	allowed  []string // tolerated lines seen, for the log
	allow    []allowRule
}

// allowRule tolerates one kind of console line; why says why it is expected.
type allowRule struct {
	re  *regexp.Regexp // matched against "<source> <level>: <text> <url>"
	why string
}

// newTab opens a tab and collects its uncaught exceptions, console errors
// and failed loads from its very first event; at the end of the test any of
// them not allowed fails it.
func newTab(bctx context.Context, t *testing.T, name string, allow ...allowRule) *tab {
	t.Helper()
	tb := &tab{t: t, name: name, allow: allow}
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithListener(tb.onEvent))
	tb.ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open tab %s: %v", name, err)
	}
	t.Cleanup(func() {
		tb.mu.Lock()
		problems, allowed := tb.problems, tb.allowed
		tb.mu.Unlock()
		for _, a := range allowed {
			t.Logf("%s tab: allowed console line: %s", name, a)
		}
		for _, p := range problems {
			t.Errorf("%s tab: %s", name, p)
		}
		cancel()
	})
	return tb
}

// onEvent runs in the tab's event loop: it must be quick and send nothing.
func (tb *tab) onEvent(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		line = fmt.Sprintf("uncaught exception: %s (%s:%d:%d)", text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			switch {
			case a.Description != "":
				parts = append(parts, a.Description)
			case len(a.Value) > 0:
				var str string
				if json.Unmarshal(a.Value, &str) == nil {
					parts = append(parts, str)
				} else {
					parts = append(parts, string(a.Value))
				}
			default:
				parts = append(parts, string(a.Type))
			}
		}
		line = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
	case *network.EventRequestWillBeSent:
		tb.checkURL(ev.Request.URL)
		return
	case *network.EventWebSocketCreated:
		tb.checkURL(ev.URL)
		return
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level != log.EntryLevelError {
			return
		}
		line = fmt.Sprintf("%s error: %s %s", e.Source, e.Text, e.URL)
		line = strings.TrimSpace(line)
	default:
		return
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, a := range tb.allow {
		if a.re.MatchString(line) {
			tb.allowed = append(tb.allowed, line+" ["+a.why+"]")
			return
		}
	}
	tb.problems = append(tb.problems, line)
}

// checkURL fails the test when a page put a secret in a URL it requested
// (speaker key, passcode, token): load balancers and proxies write URLs to
// their logs. Pages present secrets in headers or WebSocket subprotocols.
func (tb *tab) checkURL(raw string) {
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	for _, name := range []string{"key", "passcode", "token"} {
		if u.Query().Has(name) {
			tb.mu.Lock()
			tb.problems = append(tb.problems, fmt.Sprintf("a secret (%s) in a requested URL: %s", name, u.Path))
			tb.mu.Unlock()
		}
	}
}

// do runs actions in the tab, failing the test with what on error.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fail("%s: %v", what, err)
	}
}

// navigate loads url and waits for sel to be visible.
func (tb *tab) navigate(url, sel string) {
	tb.t.Helper()
	tb.do("open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel)))
}

func (tb *tab) click(sel string) {
	tb.t.Helper()
	tb.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// eval evaluates a JavaScript expression in the page into T.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript expression in the page until it is truthy.
// There is no DOM event for "audio arrived" or "the pill changed" that the
// test could wait on from Go, so it polls (every 100 ms) with a deadline. A
// page navigating meanwhile is fine: the expression runs in the new page.
func (tb *tab) waitFor(what, expr string, timeout time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")", chromedp.EvalAwaitPromise))
		cancel()
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err
		}
		if tb.ctx.Err() != nil || time.Now().After(deadline) {
			msg := fmt.Sprintf("timed out after %s waiting for %s (%s)", timeout, what, expr)
			if last != nil {
				msg += fmt.Sprintf("; last error: %v", last)
			}
			tb.fail("%s", msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fail stops the test with the page's visible text and a screenshot, which
// usually say what went wrong.
func (tb *tab) fail(format string, args ...any) {
	tb.t.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	if text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`)); err == nil {
		msg += "\n--- " + tb.name + " page text ---\n" + harness.Tail(text, 40)
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		name := "FAILED-" + sanitize(tb.t.Name()) + "-" + tb.name + ".png"
		if err := saveFile(name, png); err == nil {
			msg += "\n(screenshot: test/output/screenshots/" + name + ")"
		}
	}
	tb.t.Fatal(msg)
}

// viewport is a window size the pages are checked at.
type viewport struct {
	suffix string
	w, h   int64
	mobile bool
}

// viewports are a phone (390×844, mobile) and a desktop (1280×800).
var viewports = []viewport{{"phone", 390, 844, true}, {"desktop", 1280, 800, false}}

// resize sets the tab's viewport and lets layout settle.
func (tb *tab) resize(size viewport) {
	tb.t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if size.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
	}
	tb.do("resize to "+size.suffix, chromedp.EmulateViewport(size.w, size.h, opts...))
	// Let layout, fonts and images settle after the resize.
	eval[chromedp.Void](tb, `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))`)
}

// screenshot saves the whole page as <name>.png.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	cancel()
	if err != nil {
		tb.fail("screenshot %s: %v", name, err)
	}
	if err := saveFile(name+".png", png); err != nil {
		tb.t.Fatalf("save screenshot: %v", err)
	}
}

// screenshots saves the whole page at a phone size and at a desktop size
// as <name>-phone.png and <name>-desktop.png, and leaves the tab at the
// desktop size.
func (tb *tab) screenshots(name string) {
	tb.t.Helper()
	for _, size := range viewports {
		tb.resize(size)
		tb.screenshot(name + "-" + size.suffix)
	}
}

func saveFile(name string, b []byte) error {
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(screenshotDir, name), b, 0o644)
}

func sanitize(s string) string {
	return regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(s, "_")
}

// ---------- small helpers ----------

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
