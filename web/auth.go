package web

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/babelcast/babelcast/internal/httperr"
)

// Brute-force limit on the admin token: a client gets authFailBurst wrong
// tokens at once, then one more every authFailEvery. While it has none left,
// every admin request from it is refused with 429, right token or not, so
// the answer reveals nothing about a guess.
const (
	authFailBurst = 10
	authFailEvery = 6 * time.Second // 10 a minute
	// authFailMaxClients bounds the limiter's memory: past it, clients whose
	// budget is full again are forgotten, then, if still too many, all.
	authFailMaxClients = 10000
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
		client := clientKey(r)
		now := time.Now()
		if s.authFails.blocked(client, now) {
			w.Header().Set("Retry-After", fmt.Sprint(int(authFailEvery.Seconds())))
			httperr.Write(w, http.StatusTooManyRequests, "too_many_attempts",
				"too many wrong admin tokens from this address; try again later")
			return
		}
		if len(s.adminToken) == 0 {
			httperr.Forbidden(w, "the organizer API is disabled: no admin token is configured")
			return
		}
		if subtle.ConstantTimeCompare([]byte(token), s.adminToken) != 1 {
			s.authFails.fail(client, now)
			s.log.Warn("wrong admin token", "client", client, "method", r.Method, "path", r.URL.Path)
			httperr.Forbidden(w, "wrong admin token")
			return
		}
		next.ServeHTTP(w, r)
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

// clientKey identifies the client for rate limiting: its IP address as the
// connection (or a trusted proxy middleware that rewrote RemoteAddr) says,
// never a client-supplied header. IPv6 clients are grouped by /64, since
// one host usually holds a whole /64.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// failLimiter counts wrong admin tokens per client.
type failLimiter struct {
	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

func newFailLimiter() *failLimiter {
	return &failLimiter{clients: map[string]*rate.Limiter{}}
}

// blocked reports whether client has used up its wrong-token budget.
func (f *failLimiter) blocked(client string, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.clients[client]
	return ok && l.TokensAt(now) < 1
}

// fail records a wrong token from client.
func (f *failLimiter) fail(client string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.clients[client]
	if !ok {
		if len(f.clients) >= authFailMaxClients {
			f.pruneLocked(now)
			if len(f.clients) >= authFailMaxClients {
				f.clients = map[string]*rate.Limiter{}
			}
		}
		l = rate.NewLimiter(rate.Every(authFailEvery), authFailBurst)
		f.clients[client] = l
	}
	l.AllowN(now, 1)
}

// prune forgets clients whose budget has refilled.
func (f *failLimiter) prune(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pruneLocked(now)
}

func (f *failLimiter) pruneLocked(now time.Time) {
	for c, l := range f.clients {
		if l.TokensAt(now) >= authFailBurst {
			delete(f.clients, c)
		}
	}
}
