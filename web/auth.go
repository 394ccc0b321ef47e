package web

import (
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/babelcast/babelcast/internal/access"
	"github.com/babelcast/babelcast/internal/httperr"
)

// Brute-force limit on the admin token: a client gets authFailBurst wrong
// tokens at once, then one more every authFailEvery; past that its wrong
// tokens are refused with 429 unchecked. The right token always works: at
// a venue where everyone shares one NAT address, an attendee guessing must
// not lock the organizers out. That the right token is told apart while
// wrong ones are refused costs nothing: a generated token (192 random
// bits) cannot be found by guessing, however fast (the start warns about a
// short configured one).
const (
	authFailBurst = 10
	authFailEvery = 6 * time.Second // 10 a minute
)

// requireAdmin lets a request through only with the admin token:
// missing → 401, wrong → 403, too many wrong ones from the client → 429.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			httperr.Unauthorized(w, "admin token required: Authorization: Bearer <token>")
			return
		}
		if len(s.adminToken) == 0 {
			httperr.Forbidden(w, "the organizer API is disabled: no admin token is configured")
			return
		}
		if subtle.ConstantTimeCompare([]byte(token), s.adminToken) == 1 {
			next.ServeHTTP(w, r)
			return
		}
		client := access.Client(r)
		now := time.Now()
		if blocked, after := s.authFails.Blocked(client, now); blocked {
			access.RetryAfter(w, after)
			httperr.Write(w, http.StatusTooManyRequests, "too_many_attempts",
				"too many wrong admin tokens from this address; try again later")
			return
		}
		s.authFails.Fail(client, now)
		s.log.Warn("wrong admin token", "client", client, "method", r.Method, "path", r.URL.Path)
		httperr.Forbidden(w, "wrong admin token")
	})
}

// bearer returns the token of an "Authorization: Bearer …" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
