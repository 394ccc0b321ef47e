package app

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/go-chi/chi/v5/middleware"
)

// ParseTrustedProxies reads --trusted-proxies: comma-separated addresses or
// CIDR prefixes of the load balancers in front of this process.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %q is neither an address nor a CIDR prefix", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// clientAddress makes r.RemoteAddr the client's address when the request
// came through trusted proxies. chi's ClientIPFromXFF finds the client: the
// X-Forwarded-For entries read from the right, past every trusted hop, the
// first one that is not trusted; garbage on the way, or no such entry,
// finds none. A request from any other peer is its own client, so a client
// cannot choose the address it is rate-limited and logged by.
//
// chi keeps what it found in the request's context; this writes it into
// RemoteAddr (port 0) as well, because that is what the admin token's
// brute-force limit and the logs of every role read.
func clientAddress(trusted []netip.Prefix) func(http.Handler) http.Handler {
	if len(trusted) == 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	cidrs := make([]string, len(trusted))
	for i, p := range trusted {
		cidrs[i] = p.String()
	}
	fromXFF := middleware.ClientIPFromXFF(cidrs...)
	return func(next http.Handler) http.Handler {
		return fromXFF(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if client := middleware.GetClientIPAddr(r.Context()); client.IsValid() && client != peerAddr(r) {
				r.RemoteAddr = net.JoinHostPort(client.String(), "0")
			}
			next.ServeHTTP(w, r)
		}))
	}
}

// peerAddr is the address of r's TCP peer, read as chi reads it.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
