// Package access guards babelcast's doors: who a request comes from
// (Client), a budget of wrong secrets per client (Failures: the admin
// token, listener passcodes), caps on open connections per client and in
// all (Conns), and how a browser presents a secret without putting it in a
// URL, which load balancers and proxies write to their logs (Credential:
// a WebSocket subprotocol).
package access

import (
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"
)

// Client identifies the client of r for limits: its IP address as the
// connection (or the trusted-proxy middleware that rewrote RemoteAddr)
// says, never a header the client chose. IPv6 clients are grouped by /64,
// since one host usually holds a whole /64.
func Client(r *http.Request) string {
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

// Failures counts wrong secrets per key (a client, or a client and a
// room): a key gets burst wrong ones at once, then one more every every.
// Keys whose budget is full again are forgotten; past maxKeys, the oldest
// state goes first, so memory stays bounded whoever guesses.
type Failures struct {
	burst   int
	every   time.Duration
	maxKeys int

	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

// DefaultMaxKeys bounds a Failures' memory.
const DefaultMaxKeys = 10000

// NewFailures makes a budget of burst wrong secrets, refilled one every
// every.
func NewFailures(burst int, every time.Duration) *Failures {
	return &Failures{burst: burst, every: every, maxKeys: DefaultMaxKeys, keys: map[string]*rate.Limiter{}}
}

// Blocked reports whether key has used up its budget, and when it may try
// again.
func (f *Failures) Blocked(key string, now time.Time) (bool, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.keys[key]
	if !ok {
		return false, 0
	}
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	return true, time.Duration((1 - tokens) * float64(f.every))
}

// Fail records a wrong secret from key.
func (f *Failures) Fail(key string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.keys[key]
	if !ok {
		if len(f.keys) >= f.maxKeys {
			f.pruneLocked(now)
			if len(f.keys) >= f.maxKeys {
				f.keys = map[string]*rate.Limiter{}
			}
		}
		l = rate.NewLimiter(rate.Every(f.every), f.burst)
		f.keys[key] = l
	}
	l.AllowN(now, 1)
}

// Prune forgets keys whose budget has refilled.
func (f *Failures) Prune(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pruneLocked(now)
}

func (f *Failures) pruneLocked(now time.Time) {
	for k, l := range f.keys {
		if l.TokensAt(now) >= float64(f.burst) {
			delete(f.keys, k)
		}
	}
}

// Len is how many keys are remembered.
func (f *Failures) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.keys)
}

// Passcode guessing: a client gets PasscodeBurst wrong passcodes for a
// room at once, then one more every PasscodeEvery. Past that, every
// request of that client for that room that carries a passcode is refused
// (429) before the passcode is looked at, the right one too: a passcode is
// short enough to be guessed, so a right one let through while wrong ones
// are refused would tell it. Behind a venue's one NAT address, a guesser
// holds up new attendees of that room until the budget refills; those
// already in stay.
const (
	PasscodeBurst = 20
	PasscodeEvery = 3 * time.Second
)

// Passcodes is the budget of wrong passcodes, by client and room: every
// endpoint that checks a room's passcode (listening, streaming, asking a
// question) goes through one.
type Passcodes struct{ f *Failures }

// NewPasscodes makes an empty budget.
func NewPasscodes() *Passcodes { return &Passcodes{f: NewFailures(PasscodeBurst, PasscodeEvery)} }

func passKey(client, roomID string) string { return client + " " + roomID }

// Blocked reports whether client has used up its wrong passcodes for
// roomID, and when it may try again.
func (p *Passcodes) Blocked(client, roomID string) (bool, time.Duration) {
	return p.f.Blocked(passKey(client, roomID), time.Now())
}

// Fail counts a wrong passcode of client for roomID.
func (p *Passcodes) Fail(client, roomID string) { p.f.Fail(passKey(client, roomID), time.Now()) }

// Prune forgets budgets that have refilled.
func (p *Passcodes) Prune(now time.Time) { p.f.Prune(now) }

// Refusals of Conns.
var (
	ErrClientFull = errors.New("too many connections from this address")
	ErrFull       = errors.New("too many connections")
)

// Conns caps open connections per client and in all; a cap of zero or
// less is no cap.
type Conns struct {
	perClient, total int

	mu  sync.Mutex
	by  map[string]int
	all int
}

// NewConns makes the caps.
func NewConns(perClient, total int) *Conns {
	return &Conns{perClient: perClient, total: total, by: map[string]int{}}
}

// Acquire counts a connection of client, or refuses it: ErrClientFull,
// ErrFull. Each Acquire that succeeds needs one Release.
func (c *Conns) Acquire(client string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total > 0 && c.all >= c.total {
		return ErrFull
	}
	if c.perClient > 0 && c.by[client] >= c.perClient {
		return ErrClientFull
	}
	c.by[client]++
	c.all++
	return nil
}

// Release uncounts a connection of client.
func (c *Conns) Release(client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by[client] <= 1 {
		delete(c.by, client)
	} else {
		c.by[client]--
	}
	c.all--
}

// Protocol is the WebSocket subprotocol of babelcast's endpoints. A
// browser offers it with the credential as a second protocol,
// "babelcast.<kind>.<base64url of the secret>", and the server selects
// "babelcast": the secret travels in a header that proxies do not log,
// where a query string (?key=, ?passcode=) is in every access log.
const Protocol = "babelcast"

// Kinds of credential a subprotocol carries.
const (
	KindKey      = "key"      // a speaker key
	KindPasscode = "passcode" // a room's listener passcode
)

// Credential returns the secret of kind that r offers as a WebSocket
// subprotocol, and whether it offers one.
func Credential(r *http.Request, kind string) (string, bool) {
	prefix := Protocol + "." + kind + "."
	for _, p := range websocket.Subprotocols(r) {
		if enc, ok := strings.CutPrefix(p, prefix); ok {
			b, err := base64.RawURLEncoding.DecodeString(enc)
			if err != nil {
				return "", true // offered, unreadable: a wrong one
			}
			return string(b), true
		}
	}
	return "", false
}

// CredentialProtocol is the subprotocol that carries secret as kind (for
// Go clients and tests; the pages build it in JavaScript).
func CredentialProtocol(kind, secret string) string {
	return Protocol + "." + kind + "." + base64.RawURLEncoding.EncodeToString([]byte(secret))
}

// RetryAfter writes a Retry-After header of d, at least one second.
func RetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
}
