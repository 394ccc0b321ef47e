// Package browser drives babelcast's pages in Debian's Chromium (headless,
// through the DevTools protocol with chromedp) against the real service
// running in-process, with the fake OpenAI Realtime server as the engine
// and Chromium's fake microphone playing speech from a WAV file.
//
// The tests click through the pages as people do, fail on any script error
// a page throws, and save screenshots of every page at a phone and a desktop
// size into test/output/screenshots/ for a person to look at.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/testlog"
)

const (
	adminToken = "adm_browser_test_token"
	// chromiumPath is Debian's Chromium, which scripts/test installs. The
	// environment variable BABELCAST_CHROMIUM names another binary.
	chromiumPath = "/usr/bin/chromium"
)

// screenshotDir is where the pages' pictures go (gitignored test output).
var screenshotDir = filepath.Join("..", "output", "screenshots")

// ---------- the service ----------

// service is a running babelcast with the fake Realtime server behind it.
type service struct {
	t    *testing.T
	fake *fakerealtime.Server
	cfg  app.Config
	logs *testlog.Buffer

	mu  sync.Mutex
	app *app.App
}

func startService(t *testing.T) *service {
	t.Helper()
	fake := fakerealtime.New(t, fakerealtime.Options{})
	logs := &testlog.Buffer{}
	s := &service{t: t, fake: fake, logs: logs, cfg: app.Config{
		Addr:        "127.0.0.1:0",
		DataDir:     t.TempDir(),
		Node:        "browser-test",
		AdminToken:  adminToken,
		Engine:      "openai",
		OpenAIKey:   fake.APIKey(),
		RealtimeURL: fake.URL(),
		Linger:      3 * time.Second,
		Log:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}}
	a, err := app.Start(context.Background(), s.cfg)
	if err != nil {
		t.Fatalf("start babelcast: %v", err)
	}
	s.app = a
	// The next start (a restart) must come back on the same address.
	s.cfg.Addr = a.Addr()
	t.Cleanup(func() {
		s.stop()
		out := logs.String()
		if strings.Contains(out, fake.APIKey()) || strings.Contains(out, adminToken) {
			t.Error("a secret reached the service log")
		}
		if t.Failed() {
			t.Logf("service log (last lines):\n%s", testlog.Tail(out, 60))
		}
	})
	return s
}

// URL is the service's base URL (the same across restarts).
func (s *service) URL() string { return "http://" + s.cfg.Addr }

func (s *service) stop() {
	s.mu.Lock()
	a := s.app
	s.app = nil
	s.mu.Unlock()
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		s.t.Errorf("shutdown: %v", err)
	}
}

// restart stops the process (listeners and the speaker are closed with
// 1001) and starts a new one on the same address and data directory.
func (s *service) restart() {
	s.t.Helper()
	s.stop()
	a, err := app.Start(context.Background(), s.cfg)
	if err != nil {
		s.t.Fatalf("restart babelcast: %v", err)
	}
	s.mu.Lock()
	s.app = a
	s.mu.Unlock()
}

// api calls the organizer API with the admin token and decodes the JSON
// answer into out; it returns the HTTP status.
func (s *service) api(method, path, body string, out any) int {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// createdRoom is the part of the organizer API's room we use.
type createdRoom struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	SpeakerKey string `json:"speaker_key"`
	Links      struct {
		Listen string `json:"listen"`
		Speak  string `json:"speak"`
	} `json:"links"`
}

func (s *service) createRoom(body string) createdRoom {
	s.t.Helper()
	var r createdRoom
	if code := s.api("POST", "/api/v1/rooms", body, &r); code != http.StatusCreated {
		s.t.Fatalf("create room: HTTP %d", code)
	}
	return r
}

// roomStatus is the organizer API's status body.
type roomStatus struct {
	Speaker struct {
		Connected bool `json:"connected"`
	} `json:"speaker"`
	Floor struct {
		Code      string `json:"code"`
		Listeners int    `json:"listeners"`
	} `json:"floor"`
	Languages []struct {
		Code      string `json:"code"`
		Listeners int    `json:"listeners"`
		State     string `json:"state"`
	} `json:"languages"`
}

func (st roomStatus) listeners(code string) int {
	for _, l := range st.Languages {
		if l.Code == code {
			return l.Listeners
		}
	}
	return -1
}

func (s *service) status(roomID string) roomStatus {
	s.t.Helper()
	var st roomStatus
	if code := s.api("GET", "/api/v1/rooms/"+roomID+"/status", "", &st); code != http.StatusOK {
		s.t.Fatalf("status of %s: HTTP %d", roomID, code)
	}
	return st
}

// ---------- the browser ----------

type browserOptions struct {
	// micWAV, when set, is what the fake microphone plays (in a loop).
	micWAV string
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
		chromedp.Flag("lang", "en-US"),
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
		msg += "\n--- " + tb.name + " page text ---\n" + testlog.Tail(text, 40)
	}
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		name := "FAILED-" + sanitize(tb.t.Name()) + "-" + tb.name + ".png"
		if err := saveFile(name, png); err == nil {
			msg += "\n(screenshot: test/output/screenshots/" + name + ")"
		}
	}
	tb.t.Fatal(msg)
}

// screenshots saves the whole page at a phone size (390×844, mobile) and at
// a desktop size (1280×800) as <name>-phone.png and <name>-desktop.png, and
// leaves the tab at the desktop size.
func (tb *tab) screenshots(name string) {
	tb.t.Helper()
	for _, size := range []struct {
		suffix string
		w, h   int64
		mobile bool
	}{{"phone", 390, 844, true}, {"desktop", 1280, 800, false}} {
		opts := []chromedp.EmulateViewportOption{}
		if size.mobile {
			opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateScale(2))
		}
		tb.do("resize to "+size.suffix, chromedp.EmulateViewport(size.w, size.h, opts...))
		// Let layout, fonts and images settle after the resize.
		eval[chromedp.Void](tb, `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))`)
		ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			tb.fail("screenshot %s: %v", name, err)
		}
		if err := saveFile(name+"-"+size.suffix+".png", png); err != nil {
			tb.t.Fatalf("save screenshot: %v", err)
		}
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

// ---------- audio ----------

// speechWAV writes what the fake microphone plays: bursts of speech in lang
// (the fake's tone for it) with pauses, so the fake ends sentences and
// captions come line by line. 48 kHz mono, as a microphone gives.
func speechWAV(t *testing.T, lang string) string {
	t.Helper()
	var mono []int16
	for i := 0; i < 3; i++ {
		mono = append(mono, audio.Samples(fakerealtime.Speech(lang, 1500*time.Millisecond))...)
		mono = append(mono, audio.Samples(fakerealtime.Silence(900*time.Millisecond))...)
	}
	r := audio.NewResampler(fakerealtime.SampleRate, 48000)
	up := append(r.Process(mono), r.Flush()...)
	var buf bytes.Buffer
	w, err := audio.NewWAVWriter(&buf, 48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSamples(up); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "speech-"+lang+".wav")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ---------- small helpers ----------

// waitUntil polls cond (for state outside the browser, like the API's
// status, which has no event to wait on) until it holds or fails the test.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testContext bounds a whole test, browser included.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
