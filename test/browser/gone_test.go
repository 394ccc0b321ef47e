package browser

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/babelcast/babelcast/test/harness"
)

// TestLanguageRemovedWhileListening: the organizers remove the language an
// attendee listens to. The server closes that stream with 4404, as it does
// when the whole room is deleted; the page asks the room which it was and,
// the room being there, switches to the source language and says why,
// rather than saying the room has closed (which it says once the room is
// deleted).
func TestLanguageRemovedWhileListening(t *testing.T) {
	ctx, s := startService(t, 90*time.Second)
	r := s.API.CreateRoom(`{"id":"salon","name":"Salon","source_language":"en","languages":[{"code":"es"},{"code":"fr"}]}`)
	b := newBrowser(ctx, t, browserOptions{})
	// Once the room is deleted, the page looks it up: a 404 the browser logs.
	a := newTab(b, t, "attendee", allowRule{
		regexp.MustCompile(`^network error: Failed to load resource: the server responded with a status of 404 \(Not Found\) https?://[^ ]+/api/v1/rooms/salon/public$`),
		"the page looks up the deleted room",
	})
	a.navigate(s.URL()+"/rooms/"+r.ID, "#play")
	a.waitFor("the language choice", `!!document.getElementById('lang-fr')`, 5*time.Second)
	a.click("#lang-fr")
	a.click("#play")
	harness.WaitFor(t, 10*time.Second, "the attendee on French", func() bool { return s.API.Status(r.ID).Listeners("fr") == 1 })

	if code := s.API.Call("PATCH", "/api/v1/rooms/"+r.ID, `{"languages":[{"code":"es"}]}`, nil); code != http.StatusOK {
		t.Fatalf("remove French: %d", code)
	}
	// The attendee chose French: the page spoke French, and says it in
	// French until it follows the source language.
	a.waitFor("the language-gone notice, the source language playing", `
		document.getElementById('page-notice').textContent.includes('Cette langue n’est plus proposée') &&
		!document.getElementById('player').hidden &&
		document.getElementById('lang-en').checked &&
		!document.getElementById('lang-fr') &&
		document.getElementById('state-pill').dataset.state !== 'ended'`, 10*time.Second)
	harness.WaitFor(t, 10*time.Second, "the attendee on English", func() bool { return s.API.Status(r.ID).Listeners("en") == 1 })
	a.screenshots("attendee-language-removed")

	// Deleting the room closes both streams with 4404 too: now the room
	// is not there, and the page says it has closed.
	if code := s.API.Call("DELETE", "/api/v1/rooms/"+r.ID, "", nil); code != http.StatusNoContent {
		t.Fatalf("delete the room: %d", code)
	}
	a.waitFor("the room-closed notice", `
		document.getElementById('page-notice').textContent.includes('This room has closed') &&
		document.getElementById('player').hidden &&
		document.getElementById('state-pill').dataset.state === 'ended'`, 10*time.Second)
}
