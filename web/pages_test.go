package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

func pagesServer(t *testing.T) *httptest.Server {
	t.Helper()
	r := chi.NewRouter()
	MountPages(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func pageGet(t *testing.T, srv *httptest.Server, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

var (
	scriptTag = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script>`)
	assetRef  = regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`)
	importRef = regexp.MustCompile(`(?m)^\s*import\s+(?:[^'"]*?from\s+)?['"](\.{1,2}/[^'"]+)['"]`)
	styleAttr = regexp.MustCompile(`(?i)<[^>]+\sstyle\s*=`)
	inlineOn  = regexp.MustCompile(`(?i)<[^>]+\son[a-z]+\s*=`)
)

var pageRoutes = []struct {
	path, script string
}{
	{"/", "/static/js/join.js"},
	{"/rooms/keynote", "/static/js/listen.js"},
	{"/rooms/keynote/speak", "/static/js/speak.js"},
	{"/rooms/keynote/talk", "/static/js/talk.js"},
	{"/admin", "/static/js/admin.js"},
}

// Each page is served as HTML with the security headers, has no inline
// script or inline handler (the CSP would block them), and every asset it
// names, and every module those import, is in the embed with the right type.
func TestPagesServeHTMLWithSecurityHeaders(t *testing.T) {
	t.Parallel()
	srv := pagesServer(t)
	for _, p := range pageRoutes {
		t.Run(p.path, func(t *testing.T) {
			res, body := pageGet(t, srv, p.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status %d", res.StatusCode)
			}
			if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Fatalf("content type %q", ct)
			}
			csp := res.Header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "connect-src 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("CSP allows unsafe code: %q", csp)
			}
			host := strings.TrimPrefix(srv.URL, "http://")
			if !strings.Contains(csp, "ws://"+host) || !strings.Contains(csp, "wss://"+host) {
				t.Errorf("CSP %q does not allow WebSockets to %s", csp, host)
			}
			for h, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
				"X-Frame-Options":        "DENY",
				"Cache-Control":          "no-cache",
			} {
				if got := res.Header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}

			scripts := scriptTag.FindAllStringSubmatch(body, -1)
			if len(scripts) == 0 {
				t.Fatal("page has no script")
			}
			for _, s := range scripts {
				if !strings.Contains(s[1], `src="`) || strings.TrimSpace(s[2]) != "" {
					t.Errorf("inline script: %s", s[0])
				}
			}
			if m := styleAttr.FindString(body); m != "" {
				t.Errorf("inline style attribute (blocked by the CSP): %s", m)
			}
			if m := inlineOn.FindString(body); m != "" {
				t.Errorf("inline event handler (blocked by the CSP): %s", m)
			}
			if !strings.Contains(body, `src="`+p.script+`?v=`) {
				t.Errorf("page does not load %s with a version", p.script)
			}

			refs := assetRef.FindAllStringSubmatch(body, -1)
			if len(refs) < 3 {
				t.Fatalf("only %d asset references", len(refs))
			}
			for _, ref := range refs {
				checkAsset(t, srv, ref[1], map[string]bool{})
			}
		})
	}
}

// checkAsset fetches an asset (and, for modules, what it imports) and
// checks its type and cache headers.
func checkAsset(t *testing.T, srv *httptest.Server, ref string, seen map[string]bool) {
	t.Helper()
	u, err := url.Parse(ref)
	if err != nil {
		t.Fatalf("bad reference %q", ref)
	}
	if seen[u.Path] {
		return
	}
	seen[u.Path] = true
	res, body := pageGet(t, srv, ref, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d (referenced but not embedded?)", ref, res.StatusCode)
	}
	wantType := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
		".svg": "image/svg+xml",
	}
	for ext, want := range wantType {
		if strings.HasSuffix(u.Path, ext) && res.Header.Get("Content-Type") != want {
			t.Errorf("%s: content type %q, want %q", ref, res.Header.Get("Content-Type"), want)
		}
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: no nosniff", ref)
	}
	cc := res.Header.Get("Cache-Control")
	if u.Query().Get("v") != "" {
		if !strings.Contains(cc, "immutable") {
			t.Errorf("%s: versioned asset with Cache-Control %q", ref, cc)
		}
	} else if !strings.Contains(cc, "no-cache") {
		t.Errorf("%s: unversioned asset with Cache-Control %q", ref, cc)
	}
	if res.Header.Get("ETag") == "" {
		t.Errorf("%s: no ETag", ref)
	}
	if strings.HasSuffix(u.Path, ".js") {
		for _, m := range importRef.FindAllStringSubmatch(body, -1) {
			next, err := u.Parse(m[1])
			if err != nil {
				t.Fatalf("%s: bad import %q", ref, m[1])
			}
			checkAsset(t, srv, next.Path, seen)
		}
	}
}

// The worklets are loaded by URL from scripts (audioWorklet.addModule), not
// from the HTML, so they are checked by name: both must be JavaScript.
func TestWorkletsAreJavaScript(t *testing.T) {
	t.Parallel()
	srv := pagesServer(t)
	for _, p := range []string{"/static/player-worklet.js", "/static/capture-worklet.js"} {
		res, body := pageGet(t, srv, p, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", p, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
			t.Errorf("%s: content type %q", p, ct)
		}
		if !strings.Contains(body, "registerProcessor(") {
			t.Errorf("%s registers no processor", p)
		}
	}
	// And the modules that load them name them exactly as served.
	for script, worklet := range map[string]string{
		"/static/js/player.js": "/static/player-worklet.js",
		"/static/js/mic.js":    "/static/capture-worklet.js",
	} {
		_, body := pageGet(t, srv, script, nil)
		if !strings.Contains(body, `'`+worklet+`'`) {
			t.Errorf("%s does not load %s", script, worklet)
		}
	}
}

func TestStaticRevalidationAndMissing(t *testing.T) {
	t.Parallel()
	srv := pagesServer(t)
	res, _ := pageGet(t, srv, "/static/js/api.js", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	res, body := pageGet(t, srv, "/static/js/api.js", map[string]string{"If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("revalidation: status %d, %d bytes", res.StatusCode, len(body))
	}
	// A stale version in the URL is served but not cached for long.
	res, _ = pageGet(t, srv, "/static/js/api.js?v=0000", nil)
	if cc := res.Header.Get("Cache-Control"); strings.Contains(cc, "immutable") {
		t.Fatalf("stale version cached as immutable: %q", cc)
	}
	for _, p := range []string{"/static/nope.js", "/static/join.html", "/static/../pages.go", "/static/"} {
		res, _ := pageGet(t, srv, p, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, res.StatusCode)
		}
	}
}

func TestRoomPageWithMalformedIDIs404(t *testing.T) {
	t.Parallel()
	srv := pagesServer(t)
	for path, script := range map[string]string{
		"/rooms/NOT_A_ROOM":       "/static/js/listen.js",
		"/rooms/NOT_A_ROOM/speak": "/static/js/speak.js",
		"/rooms/NOT_A_ROOM/talk":  "/static/js/talk.js",
	} {
		res, body := pageGet(t, srv, path, nil)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d", path, res.StatusCode)
		}
		if !strings.Contains(body, script) {
			t.Errorf("%s: the 404 should still be the page that explains itself", path)
		}
	}
}

// The conversation page is its own page: its title, and the parts its
// script needs (the key form, the language choice, the conversation with a
// live region for screen readers, the earphones hint).
func TestTalkPage(t *testing.T) {
	t.Parallel()
	srv := pagesServer(t)
	res, body := pageGet(t, srv, "/rooms/keynote/talk", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if !strings.Contains(body, "<title>Conversation · babelcast</title>") {
		t.Error("the conversation page has not its own title")
	}
	for _, part := range []string{`id="key-form"`, `id="lang-list"`, `id="talk-start"`, `id="conversation"`,
		`role="log"`, `id="earphones"`, `id="talk-leave"`, `id="talk-mute"`} {
		if !strings.Contains(body, part) {
			t.Errorf("the conversation page lacks %s", part)
		}
	}
	// HEAD answers as GET does, as for every page.
	hr, err := srv.Client().Head(srv.URL + "/rooms/keynote/talk")
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != http.StatusOK || hr.ContentLength != int64(len(body)) {
		t.Errorf("HEAD: status %d, length %d; want 200, %d", hr.StatusCode, hr.ContentLength, len(body))
	}
}

func TestHeadRequests(t *testing.T) {
	t.Parallel()
	srv := pagesServer(t)
	for _, p := range []string{"/", "/admin", "/static/css/app.css"} {
		res, err := srv.Client().Head(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.ContentLength <= 0 {
			t.Errorf("HEAD %s: status %d, length %d", p, res.StatusCode, res.ContentLength)
		}
	}
}

// A Host header that could break out of the CSP is not echoed into it.
func TestCSPIgnoresHostileHost(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "evil.example; script-src *"
	r := chi.NewRouter()
	MountPages(r)
	r.ServeHTTP(rec, req)
	csp := rec.Header().Get("Content-Security-Policy")
	if strings.Contains(csp, "evil") || strings.Contains(csp, "script-src *") {
		t.Fatalf("CSP echoes the Host: %q", csp)
	}
}
