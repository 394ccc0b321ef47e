package fakerealtime_test

import (
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	fr "github.com/babelcast/babelcast/test/fakerealtime"
)

func TestSessionsExpireWithSessionExpiredThen1001(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	s.SetSessionDuration(500 * time.Millisecond)
	for _, url := range []string{translateURL(s), realtimeURL(s)} {
		c, created := connect(t, s, url)
		if exp := int64(created.num("session", "expires_at")); exp > time.Now().Unix()+2 {
			t.Fatalf("%s: expires_at %d does not reflect a 500 ms session", url, exp)
		}
		ev := c.next("error")
		if ev.str("error", "code") != "session_expired" || ev.str("error", "type") != "invalid_request_error" {
			t.Fatalf("%s: %v", url, ev)
		}
		if code := c.closed(); code != websocket.CloseGoingAway {
			t.Fatalf("%s: close %d, want 1001", url, code)
		}
	}
}

func TestExpireNowAndDropNow(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	tr := openTranslation(t, s, "es", false)
	rt := openRealtime(t, s, "Translate into Dutch.", vad(true, true))
	if n := s.Expire(fr.Translate); n != 1 {
		t.Fatalf("expired %d sessions", n)
	}
	if ev := tr.next("error"); ev.str("error", "code") != "session_expired" || tr.closed() != websocket.CloseGoingAway {
		t.Fatalf("expire: %v", ev)
	}
	if n := s.Drop(fr.Realtime); n != 1 {
		t.Fatalf("dropped %d sessions", n)
	}
	if code := rt.closed(); code != -1 && code != websocket.CloseAbnormalClosure {
		t.Fatalf("a dropped connection closed cleanly with %d", code)
	}
	if !s.WaitUntil(5*time.Second, func() bool { return s.OpenNow("") == 0 }) {
		t.Fatal("sessions still open")
	}
}

func TestDropAfterAppendsHitsOneSession(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	s.AddFault(fr.Fault{Endpoint: fr.Translate, AfterAppends: 3, Action: fr.ActionDrop})
	c := openTranslation(t, s, "it", false)
	// The server drops the connection after the third append: a later
	// write may find it gone.
	c.appendUntilGone("session.input_audio_buffer.append", fr.Speech("en", time.Second))
	if code := c.closed(); code != -1 && code != websocket.CloseAbnormalClosure {
		t.Fatalf("close %d, want an abrupt end", code)
	}
	s.WaitUntil(5*time.Second, func() bool { return s.OpenNow("") == 0 })
	si := s.Sessions()[0]
	if si.Appends != 3 || si.CloseReason != "dropped" {
		t.Fatalf("dropped after %d appends (%q)", si.Appends, si.CloseReason)
	}
	// The fault was for one session: the next one works.
	c2 := openTranslation(t, s, "it", false)
	c2.appendAudio("session.input_audio_buffer.append", fr.Speech("en", time.Second))
	c2.barrier()
}

func TestInjectedErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})

	s.FailNext(fr.Realtime, 1, "insufficient_quota")
	c, _ := connect(t, s, realtimeURL(s))
	if ev := c.next("error"); ev.str("error", "code") != "insufficient_quota" || c.closed() != websocket.ClosePolicyViolation {
		t.Fatalf("insufficient_quota: %v", ev)
	}

	s.AddFault(fr.Fault{Endpoint: fr.Realtime, Code: "rate_limit_exceeded", RetryAfter: 1500 * time.Millisecond, AfterAppends: 1})
	c, _ = connect(t, s, realtimeURL(s))
	c.appendAudio("input_audio_buffer.append", fr.Silence(200*time.Millisecond))
	ev := c.next("error")
	if ev.str("error", "code") != "rate_limit_exceeded" || !strings.Contains(ev.str("error", "message"), "try again in 1.500s") {
		t.Fatalf("rate limit: %v", ev)
	}
	c.barrier() // still open

	// A language filter waits until the session speaks that language.
	s.AddFault(fr.Fault{Endpoint: fr.Translate, Lang: "es", Code: "server_error", Sessions: -1})
	fc := openTranslation(t, s, "fr", false)
	fc.barrier()
	es := openTranslation(t, s, "es", false)
	if ev := es.next("error"); ev.str("error", "code") != "server_error" || es.closed() != websocket.CloseInternalServerErr {
		t.Fatalf("server_error: %v", ev)
	}
	fc.barrier()
}

func TestRejectConnectionsAnd429(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	s.RejectConnections(time.Hour, 2*time.Second)
	_, resp, err := websocket.DefaultDialer.Dial(realtimeURL(s), bearer(s.APIKey()))
	if err == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("dial while rejecting: %v %v", err, resp)
	}
	if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), `"code":"rate_limit_exceeded"`) {
		t.Fatalf("body %s", body)
	}
	s.RejectConnections(0, 0)
	connect(t, s, realtimeURL(s))
}

// Attempts counts refused connections too: a test of a client's backoff
// needs them, as no session records them.
func TestAttemptsCountRefusedConnections(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{})
	if _, resp, err := websocket.DefaultDialer.Dial(translateURL(s), bearer("sk-wrong-key-1234")); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong key: %v %v", err, resp)
	}
	s.RejectConnections(time.Hour, time.Second)
	if _, resp, err := websocket.DefaultDialer.Dial(realtimeURL(s), bearer(s.APIKey())); err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("while rejecting: %v %v", err, resp)
	}
	s.RejectConnections(0, 0)
	connect(t, s, realtimeURL(s))
	if s.Attempts(fr.Translate) != 1 || s.Attempts(fr.Realtime) != 2 || s.Attempts("") != 3 {
		t.Fatalf("attempts %d/%d/%d, want 1/2/3", s.Attempts(fr.Translate), s.Attempts(fr.Realtime), s.Attempts(""))
	}
	if s.Opened("") != 1 {
		t.Fatalf("opened %d, want 1", s.Opened(""))
	}
}

func TestMaxConcurrentSessions(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{MaxConcurrent: 1})
	c, _ := connect(t, s, translateURL(s))
	if _, resp, err := websocket.DefaultDialer.Dial(realtimeURL(s), bearer(s.APIKey())); err == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second session: %v %v", err, resp)
	}
	c.send(map[string]any{"type": "session.close"})
	c.closed()
	if !s.WaitUntil(5*time.Second, func() bool { return s.OpenNow("") == 0 }) {
		t.Fatal("first session never ended")
	}
	connect(t, s, realtimeURL(s))
	if s.Opened(fr.Translate) != 1 || s.Opened(fr.Realtime) != 1 {
		t.Fatalf("opened %d/%d", s.Opened(fr.Translate), s.Opened(fr.Realtime))
	}
}

func TestOffTopicReply(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{ResponseSpeed: math.Inf(1)})
	s.AddFault(fr.Fault{Endpoint: fr.Realtime, Action: fr.ActionOffTopic})
	c := openRealtime(t, s, "Translate into Spanish.", vad(true, true))
	c.appendAudio("input_audio_buffer.append", turn("en", 500*time.Millisecond))
	_, seen := c.until("response.done")
	tr := ofType(seen, "response.output_audio_transcript.done")[0].str("transcript")
	pcm := audioOf(t, ofType(seen, "response.output_audio.delta"))
	if !strings.HasPrefix(tr, "Sure!") || fr.Goertzel(pcm, fr.ToneHz("es")) > 0.1 {
		t.Fatalf("off-topic reply %q, Spanish share %.2f", tr, fr.Goertzel(pcm, fr.ToneHz("es")))
	}
	c.appendAudio("input_audio_buffer.append", turn("en", 500*time.Millisecond))
	_, seen = c.until("response.done")
	if tr := ofType(seen, "response.output_audio_transcript.done")[0].str("transcript"); tr != "[es] sentence 2." {
		t.Fatalf("the next response is back to translating: %q", tr)
	}
}

func TestResponseDelayHoldsFirstAudio(t *testing.T) {
	t.Parallel()
	s := newServer(t, fr.Options{ResponseSpeed: math.Inf(1)})
	s.SetResponseDelay(300 * time.Millisecond)
	c := openRealtime(t, s, "Translate into Hindi.", vad(true, true))
	// Timed from the append, not from response.created: that event may be
	// read late on a loaded machine, and the delay is a lower bound.
	start := time.Now()
	c.appendAudio("input_audio_buffer.append", turn("en", 300*time.Millisecond))
	c.next("response.created")
	c.next("response.output_audio.delta")
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("first audio after %v, want the 300 ms delay", d)
	}
}

func TestCloseEndsOpenConnections(t *testing.T) {
	t.Parallel()
	s := fr.New(nil, fr.Options{})
	c, _ := connect(t, s, translateURL(s))
	s.Close()
	c.closed()
	s.Close() // idempotent
}
