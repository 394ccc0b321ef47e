package app

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClientAddressBehindTrustedProxies(t *testing.T) {
	t.Parallel()
	trusted, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	var seen string
	h := clientAddress(trusted)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr }))
	for _, tc := range []struct {
		peer, xff, want string
	}{
		{"10.1.2.3:5000", "203.0.113.9", "203.0.113.9:0"},                         // through the load balancer
		{"10.1.2.3:5000", "198.51.100.1, 203.0.113.9, 10.9.9.9", "203.0.113.9:0"}, // the client's own entry is ignored
		{"192.0.2.7:5000", "[bad], 203.0.113.9", "203.0.113.9:0"},
		{"10.1.2.3:5000", "203.0.113.9, not-an-ip", "10.1.2.3:5000"}, // garbage at the proxy's end: keep the proxy
		{"10.1.2.3:5000", "", "10.1.2.3:5000"},
		{"198.51.100.1:5000", "203.0.113.9", "198.51.100.1:5000"}, // an untrusted peer cannot claim an address
		{"[fd00::1]:5000", "2001:db8::5", "[2001:db8::5]:0"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if seen != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %s, want %s", tc.peer, tc.xff, seen, tc.want)
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8,lb.example"); err == nil {
		t.Error("a host name was accepted as a trusted proxy")
	}
}
