package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/babelcast/babelcast/internal/room"
)

// The pages are plain HTML, CSS and JavaScript modules with no build step,
// embedded so the one binary serves everything an attendee, speaker or
// organizer needs. static/ is served as it is; pages/ holds each page's
// body and the layout they share (the <head> and frame), put together once
// at start.
//
//go:embed static
var staticFS embed.FS

//go:embed pages
var pagesFS embed.FS

// Pages under pages/, by route; pageLayout is the frame they share and
// pageParts the blocks several of them use.
const (
	pageLayout = "layout.html"
	pageParts  = "parts.html"
	pageJoin   = "join.html"
	pageListen = "listen.html"
	pageSpeak  = "speak.html"
	pageTalk   = "talk.html"
	pageBooth  = "booth.html"
	pageAdmin  = "admin.html"
)

// staticAsset is one embedded file ready to serve.
type staticAsset struct {
	body        []byte
	contentType string
	etag        string // strong ETag: a hash of body
	version     string // short hash used in ?v= to make a URL immutable
}

// siteAssets holds every embedded file by its path under static/, and the
// pages by name, rendered, with their /static/ references carrying
// ?v=<hash>.
type siteAssets struct {
	files map[string]*staticAsset
	pages map[string]*staticAsset
}

// contentTypes maps extensions to the types browsers need: modules and
// AudioWorklet files must be JavaScript, and we do not rely on the host's
// mime.types.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".json":        "application/json",
	".webmanifest": "application/manifest+json",
	".txt":         "text/plain; charset=utf-8",
}

// staticRef finds references to assets in page HTML: src="/static/…" and
// href="/static/…".
var staticRef = regexp.MustCompile(`(?:src|href)="/static/([^"?#]+)"`)

// loadAssets reads the embedded trees once at start.
func loadAssets() (*siteAssets, error) {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	a := &siteAssets{files: map[string]*staticAsset{}, pages: map[string]*staticAsset{}}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		a.files[p] = newStaticAsset(b, ct)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Render the pages and version their references, now that every asset
	// has a hash.
	for _, name := range []string{pageJoin, pageListen, pageSpeak, pageTalk, pageBooth, pageAdmin} {
		html, err := renderPage(name)
		if err != nil {
			return nil, err
		}
		html = staticRef.ReplaceAllFunc(html, func(m []byte) []byte {
			ref := string(staticRef.FindSubmatch(m)[1])
			target, ok := a.files[ref]
			if !ok {
				return m
			}
			return bytes.Replace(m, []byte(ref+`"`), []byte(ref+"?v="+target.version+`"`), 1)
		})
		a.pages[name] = newStaticAsset(html, contentTypes[".html"])
	}
	return a, nil
}

// renderPage puts a page's parts into the shared layout.
func renderPage(name string) ([]byte, error) {
	t, err := template.ParseFS(pagesFS, "pages/"+pageLayout, "pages/"+pageParts, "pages/"+name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, pageLayout, nil); err != nil {
		return nil, fmt.Errorf("page %s: %w", name, err)
	}
	return b.Bytes(), nil
}

func newStaticAsset(b []byte, contentType string) *staticAsset {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	return &staticAsset{body: b, contentType: contentType, etag: `"` + h[:32] + `"`, version: h[:12]}
}

// pageAssets is loaded at package init: the embed is fixed at build time, so a
// failure here is a build mistake that every test catches.
var pageAssets = func() *siteAssets {
	a, err := loadAssets()
	if err != nil {
		panic(fmt.Sprintf("web: embedded pages: %v", err))
	}
	return a
}()

// MountPages registers the pages and their assets on r:
//
//	GET /                  join a room by its code
//	GET /rooms/{id}        attendee: pick a language, listen, read captions
//	GET /rooms/{id}/speak  speaker: microphone to the room (one of its mics)
//	GET /rooms/{id}/talk   conversation: each phone a mic in its owner's
//	                       language, hearing the others interpreted
//	GET /rooms/{id}/booth/{lang}  an interpreter of the channel's booth
//	GET /admin             organizer console
//	GET /static/*          embedded CSS, JavaScript modules, worklets, icons
//
// Every page is the same static file whatever the room; its script reads the
// room id from the URL and talks to the public API.
func MountPages(r chi.Router) {
	page := func(pattern, name string) {
		h := servePage(name)
		r.Get(pattern, h)
		r.Head(pattern, h)
	}
	page("/", pageJoin)
	page("/rooms/{id}", pageListen)
	page("/rooms/{id}/speak", pageSpeak)
	page("/rooms/{id}/talk", pageTalk)
	page("/rooms/{id}/booth/{lang}", pageBooth)
	page("/admin", pageAdmin)
	r.Get("/static/*", serveStatic)
	r.Head("/static/*", serveStatic)
}

// servePage serves a page. Pages are never cached without revalidation, so
// a new binary's pages (and the asset versions they name) reach browsers at
// once.
func servePage(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		f := pageAssets.pages[name]
		status := http.StatusOK
		if id := chi.URLParam(r, "id"); id != "" && room.ValidID(id) != nil {
			// The page still explains itself (the room does not exist), but
			// the status tells crawlers and tools the truth.
			status = http.StatusNotFound
		}
		securityHeaders(w, r)
		w.Header().Set("Cache-Control", "no-cache")
		writeAsset(w, r, f, status)
	}
}

// serveStatic serves an embedded asset. A request carrying the asset's
// current ?v= hash may be cached for a year; any other is revalidated by
// ETag, since module imports and worklet URLs carry no version.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(chi.URLParam(r, "*"), "/")
	f, ok := pageAssets.files[name]
	if !ok {
		securityHeaders(w, r)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("not found\n"))
		return
	}
	securityHeaders(w, r)
	if v := r.URL.Query().Get("v"); v != "" && v == f.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, no-cache")
	}
	writeAsset(w, r, f, http.StatusOK)
}

// writeAsset sends f with its ETag, answering a matching If-None-Match with 304.
func writeAsset(w http.ResponseWriter, r *http.Request, f *staticAsset, status int) {
	h := w.Header()
	h.Set("ETag", f.etag)
	if status == http.StatusOK && etagMatches(r.Header.Get("If-None-Match"), f.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", f.contentType)
	h.Set("Content-Length", fmt.Sprint(len(f.body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(f.body)
	}
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == etag || t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// hostPattern accepts a Host header that is safe to echo into the CSP.
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9.\-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$`)

// securityHeaders locks the pages down: scripts only from our own files (no
// inline script), connections only to ourselves (WebSockets included, named
// explicitly for browsers whose 'self' does not cover ws:), no referrer (a
// speaker key or passcode in a URL never leaks), no framing.
func securityHeaders(w http.ResponseWriter, r *http.Request) {
	connect := "'self'"
	if hostPattern.MatchString(r.Host) {
		connect += " ws://" + r.Host + " wss://" + r.Host
	}
	h := w.Header()
	h.Set("Content-Security-Policy", strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"worker-src 'self' blob:",
		"style-src 'self'",
		"img-src 'self' blob: data:",
		"media-src 'self' blob:",
		"font-src 'self'",
		"connect-src " + connect,
		"manifest-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}, "; "))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "microphone=(self), camera=(), geolocation=(), payment=(), usb=()")
}
