package browser

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/client"
	"github.com/babelcast/babelcast/test/harness"
)

// TestAttendeeJoiningLateSeesEarlierLines is the page check: an
// attendee who opens a recorded room's page after the talk began reads
// what was said before they joined, and is told the room is recorded.
func TestAttendeeJoiningLateSeesEarlierLines(t *testing.T) {
	ctx, s := startService(t, 120*time.Second)
	r := s.API.CreateRoom(`{"id":"late","name":"Late joiner","source_language":"en","languages":[{"code":"es"}],"record":true}`)

	// The talk's first three turns, before anyone listens.
	src, err := audio.Open(harness.SpeechWAV(t, "en", 3, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := client.Speak(context.Background(), client.SpeakOptions{
		Server: s.URL(), Room: r.ID, Key: r.SpeakerKey, Source: src, Realtime: true,
	}); err != nil {
		t.Fatalf("speak: %v", err)
	}
	harness.WaitFor(t, 20*time.Second, "three Spanish lines in the transcript", func() bool {
		return strings.Count(string(s.API.Do("GET", "/api/v1/rooms/late/transcript?lang=es&format=txt", "").Body), "\n") >= 3
	})

	b := newBrowser(ctx, t, browserOptions{})
	attendee := newTab(b, t, "attendee")
	attendee.navigate(s.URL()+"/rooms/late", "#play")
	if hidden := eval[bool](attendee, `document.getElementById('recorded-note').hidden`); hidden {
		t.Error("the attendee page does not say the room is recorded")
	}
	attendee.click("#lang-es")
	attendee.click("#play")
	attendee.waitFor("the lines said before joining", `!document.getElementById('earlier').hidden &&
		document.querySelectorAll('[data-testid=earlier-line]').length === 3`, 15*time.Second)
	lines := eval[[]string](attendee, `[...document.querySelectorAll('[data-testid=earlier-line] .said')].map((p) => p.textContent)`)
	for i, l := range lines {
		if want := "sentence " + string(rune('1'+i)); !strings.HasPrefix(l, "[es]") || !strings.Contains(l, want) {
			t.Errorf("earlier line %d is %q, want the Spanish of %s", i+1, l, want)
		}
	}
	attendee.screenshots("listen-earlier")

	// The console lists the room's recordings with their sizes.
	c := openConsole(t, s, b, "/admin", "#rooms-list")
	c.click(`#rooms-list [data-room="late"] [data-testid="room-open"]`)
	c.waitFor("every channel's recording with its size", `[...document.querySelectorAll('[data-testid=record-bytes]')]
		.filter((td) => /KiB|MiB/.test(td.textContent)).length === 3`, 10*time.Second)
	c.screenshots("console-record")
}
