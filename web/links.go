package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/room"
)

// QR code sizes in pixels (?size=).
const (
	qrDefaultSize = 512
	qrMinSize     = 128
	qrMaxSize     = 2048
)

// baseURL is where share links point: Options.PublicURL, or else the
// scheme and host this request came to (X-Forwarded-Proto says the scheme
// behind a TLS-terminating proxy).
func (s *Server) baseURL(r *http.Request) string {
	if s.publicURL != "" {
		return s.publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		p, _, _ = strings.Cut(p, ",")
		switch p = strings.ToLower(strings.TrimSpace(p)); p {
		case "http", "https":
			scheme = p
		}
	}
	return scheme + "://" + r.Host
}

// links are rm's share links. The speaker key rides in the fragment, which
// browsers never send, so it stays out of access logs.
func (s *Server) links(r *http.Request, rm *room.Room) Links {
	base := s.baseURL(r) + "/rooms/" + rm.ID
	l := Links{Listen: base, Speak: base + "/speak#key=" + rm.SpeakerKey, Talk: base + "/talk#key=" + rm.SpeakerKey}
	for _, lang := range rm.Languages {
		if lang.Booth {
			if l.Booths == nil {
				l.Booths = map[string]string{}
			}
			l.Booths[lang.Code] = base + "/booth/" + lang.Code + "#key=" + lang.BoothKey
		}
	}
	return l
}

func (s *Server) roomLinks(w http.ResponseWriter, r *http.Request) {
	if rm, ok := s.loadRoom(w, r); ok {
		writeJSON(w, http.StatusOK, s.links(r, rm))
	}
}

func (s *Server) roomQR(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	which := q.Get("for")
	if which == "" {
		which = "listen"
	}
	booth, isBooth := strings.CutPrefix(which, "booth:")
	if which != "listen" && which != "speak" && which != "talk" && !isBooth {
		httperr.BadRequest(w, `"for" must be listen, speak, talk or booth:<lang>`)
		return
	}
	size := qrDefaultSize
	if v := q.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < qrMinSize || n > qrMaxSize {
			httperr.BadRequest(w, "size must be a number of pixels from "+
				strconv.Itoa(qrMinSize)+" to "+strconv.Itoa(qrMaxSize))
			return
		}
		size = n
	}
	rm, ok := s.loadRoom(w, r)
	if !ok {
		return
	}
	l := s.links(r, rm)
	link := map[string]string{"listen": l.Listen, "speak": l.Speak, "talk": l.Talk}[which]
	if isBooth {
		if link = l.Booths[booth]; link == "" {
			httperr.NotFound(w, fmt.Sprintf("room %q has no booth for %q", rm.ID, booth))
			return
		}
	}
	png, err := qrcode.Encode(link, qrcode.Medium, size)
	if err != nil {
		s.log.Error("QR code", "room", rm.ID, "err", err)
		httperr.Internal(w)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store") // the speaker code holds the key
	w.Header().Set("Content-Length", strconv.Itoa(len(png)))
	_, _ = w.Write(png)
}
