package access

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestFailuresRefillAndForget(t *testing.T) {
	t.Parallel()
	const burst, every = 10, 6 * time.Second
	f := NewFailures(burst, every)
	now := time.Unix(1_700_000_000, 0)
	for range burst {
		if blocked, _ := f.Blocked("a", now); blocked {
			t.Fatal("blocked before the budget was used")
		}
		f.Fail("a", now)
	}
	blocked, after := f.Blocked("a", now)
	if !blocked || after <= 0 || after > every {
		t.Fatalf("after the budget: blocked %v, retry after %v", blocked, after)
	}
	if blocked, _ := f.Blocked("a", now.Add(every)); blocked {
		t.Fatal("still blocked after one refill period")
	}
	f.Prune(now.Add(every))
	if f.Len() != 1 {
		t.Fatal("pruned a key whose budget is not full")
	}
	f.Prune(now.Add(burst * every))
	if f.Len() != 0 {
		t.Fatal("kept a key whose budget refilled")
	}
}

func TestFailuresBounded(t *testing.T) {
	t.Parallel()
	f := NewFailures(10, time.Second)
	now := time.Unix(1_700_000_000, 0)
	for i := range DefaultMaxKeys + 10 {
		f.Fail(strconv.Itoa(i), now)
	}
	if n := f.Len(); n > DefaultMaxKeys {
		t.Fatalf("%d keys kept, limit %d", n, DefaultMaxKeys)
	}
}

func TestConns(t *testing.T) {
	t.Parallel()
	c := NewConns(2, 3)
	for i, want := range []error{nil, nil, ErrClientFull} {
		if err := c.Acquire("a"); err != want {
			t.Fatalf("a #%d: %v, want %v", i+1, err, want)
		}
	}
	if err := c.Acquire("b"); err != nil {
		t.Fatal(err)
	}
	if err := c.Acquire("c"); err != ErrFull {
		t.Fatalf("past the total: %v", err)
	}
	c.Release("a")
	if err := c.Acquire("c"); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if err := NewConns(0, 0).Acquire("x"); err != nil {
		t.Fatalf("no caps: %v", err)
	}
}

func TestCredential(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Sec-WebSocket-Protocol", Protocol+", "+CredentialProtocol(KindPasscode, "sésame ouvre-toi"))
	if got, ok := Credential(r, KindPasscode); !ok || got != "sésame ouvre-toi" {
		t.Fatalf("passcode %q %v", got, ok)
	}
	if _, ok := Credential(r, KindKey); ok {
		t.Fatal("a key where none was offered")
	}
	r.Header.Set("Sec-WebSocket-Protocol", Protocol+", babelcast.key.!!")
	if got, ok := Credential(r, KindKey); !ok || got != "" {
		t.Fatalf("unreadable key: %q %v", got, ok)
	}
}

func TestClient(t *testing.T) {
	t.Parallel()
	for remote, want := range map[string]string{
		"203.0.113.7:4000":       "203.0.113.7",
		"[2001:db8:1:2::1]:4000": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.1]:80":  "192.0.2.1",
		"not an address":         "not an address",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if got := Client(r); got != want {
			t.Errorf("%s: %s, want %s", remote, got, want)
		}
	}
}
