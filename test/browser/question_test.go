package browser

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/babelcast/babelcast/internal/client"
	"github.com/babelcast/babelcast/internal/wire"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// channelRecording is what a listener of one channel got: its audio and
// its final captions.
type channelRecording struct {
	mu       sync.Mutex
	pcm      []byte
	captions []wire.Caption
}

func (c *channelRecording) finals() []wire.Caption {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wire.Caption(nil), c.captions...)
}

func (c *channelRecording) audio() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.pcm...)
}

// recordChannel listens to a channel of the room, as a tool would, until
// the test ends.
func recordChannel(t *testing.T, s *service.Service, roomID, lang string) *channelRecording {
	t.Helper()
	rec := &channelRecording{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = client.Listen(ctx, client.ListenOptions{
			Server: s.URL(), Room: roomID, Lang: lang,
			OnAudio: func(pcm []byte) {
				rec.mu.Lock()
				rec.pcm = append(rec.pcm, pcm...)
				rec.mu.Unlock()
			},
			OnMessage: func(typ string, raw []byte) {
				var c wire.Caption
				if typ != wire.TypeCaption || json.Unmarshal(raw, &c) != nil || !c.Final {
					return
				}
				rec.mu.Lock()
				rec.captions = append(rec.captions, c)
				rec.mu.Unlock()
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return rec
}

// askQuestion has the attendee page ask a question under name and waits
// until it is in the queue.
func askQuestion(t *testing.T, a *tab, name string) {
	t.Helper()
	a.click("#ask-open")
	a.waitFor("the question form", `!document.getElementById('ask-form').hidden`, 5*time.Second)
	eval[chromedp.Void](a, `document.getElementById('ask-name').value = ''`)
	if name != "" {
		a.do("type the name", chromedp.SendKeys(chromedp.CSS("#ask-name"), name))
	}
	a.click("#ask-submit")
	a.waitFor("the question waiting", `document.getElementById('ask').dataset.phase === 'waiting'`, 10*time.Second)
}

// jsQuestion finds the question of name in a queue shown on a page.
func jsQuestion(name string) string {
	return `[...document.querySelectorAll('#questions-list [data-testid="question"]')].find((li) =>
		li.querySelector('strong').textContent === ` + jsString(name) + `)`
}

// TestQuestionFromTheAudience: an attendee of a room that takes questions
// asks one in French from the attendee page; the speaker accepts it on the
// speaker page; the attendee's phone becomes a mic of the room, heard on
// every other channel interpreted (with the asker's name on the captions)
// and by the speaker in the speaker's language; the speaker ends it and the
// attendee is back to listening. The console shows the queue and the live
// question's mic, and declines a second question; the attendee withdraws a
// third one.
func TestQuestionFromTheAudience(t *testing.T) {
	ctx, s := startService(t, 150*time.Second)
	r := s.API.CreateRoom(`{"id":"town-hall","name":"Town hall","source_language":"en",
		"languages":[{"code":"fr"},{"code":"es"}],"questions":true}`)
	// The attendee's phone speaks French (the fr tone); the speaker's page
	// is open but its microphone is not started.
	b := newBrowser(ctx, t, browserOptions{micWAV: harness.SpeechWAV(t, "fr", 2, 1)})
	spanish := recordChannel(t, s, r.ID, "es")

	speaker := newTab(b, t, "speaker")
	speaker.navigate(s.URL()+"/rooms/"+r.ID+"/speak#key="+r.SpeakerKey, "#questions")
	tapListeners(speaker)

	con := openConsole(t, s, b, "/admin#room="+r.ID, "#questions")

	a := newTab(b, t, "attendee")
	a.navigate(s.URL()+"/rooms/"+r.ID, "#play")
	tapListeners(a)
	a.waitFor("the question section", `!document.getElementById('ask').hidden`, 5*time.Second)
	a.click("#lang-fr")
	a.click("#play")
	a.waitFor("the attendee listening to French", jsPill+` === 'live' || `+jsPill+` === 'silent' || `+jsPill+` === 'starting'`, 10*time.Second)
	if hint := eval[string](a, `document.getElementById('ask-hint').textContent`); !strings.Contains(hint, "Français") {
		t.Errorf("the question hint %q does not say the question is asked in French", hint)
	}

	askQuestion(t, a, "Camille")
	speaker.waitFor("Camille's question on the speaker page", jsQuestion("Camille"), 10*time.Second)
	con.waitFor("Camille's question in the console", jsQuestion("Camille"), 10*time.Second)
	a.screenshots("attendee-question-waiting")

	// The speaker gives Camille the floor.
	speaker.do("accept", chromedp.Click(chromedp.CSS(`#questions-list [data-testid="question-accept"]`)))
	a.waitFor("the attendee live", `document.getElementById('ask').dataset.phase === 'live'`, 15*time.Second)
	var qmic harness.MicStatus
	harness.WaitFor(t, 10*time.Second, "the question's mic in the room", func() bool {
		for _, m := range s.API.Status(r.ID).Mics {
			if m.Question != "" {
				qmic = m
				return true
			}
		}
		return false
	})
	if qmic.Name != "Camille" || qmic.Language != "fr" || qmic.Mic != "q-"+qmic.Question {
		t.Errorf("the question's mic is %+v, want q-<id> named Camille, in French", qmic)
	}
	// While the attendee speaks, their page hears French without the
	// original: not their own voice.
	a.waitFor("the attendee's channel without the original", `document.getElementById('player').dataset.passthrough === 'false'`, 10*time.Second)

	// Spanish listeners hear Camille interpreted, with her name.
	harness.WaitFor(t, 30*time.Second, "a Spanish caption of Camille's question", func() bool {
		for _, c := range spanish.finals() {
			if c.Speaker == "Camille" && strings.Contains(c.Text, "[es] sentence") && !c.Source {
				return true
			}
		}
		return false
	})
	// The speaker hears it in English (the page's language: the room's
	// source), and not Camille's French voice.
	speaker.waitFor("the question's sound on the speaker page", `document.getElementById('question-hear').dataset.lang === 'en' &&
		Number(document.getElementById('question-hear').dataset.bytes || 0) > 24000`, 20*time.Second)
	speaker.waitFor("the question's caption on the speaker page",
		`document.getElementById('question-captions').textContent.includes('[en] sentence')`, 15*time.Second)
	got := voices(heard(speaker, "en"), "en", "fr", "es")
	t.Logf("the speaker page heard: %s", fmtVoices(got))
	if got["en"] < 5 || got["fr"] > 0 || got["es"] > 0 {
		t.Errorf("the speaker page heard %s; want the English interpretation only", fmtVoices(got))
	}
	if u := eval[string](speaker, `window.__tap.map((r) => r.url).join(' ')`); !strings.Contains(u, "passthrough=false") {
		t.Errorf("the speaker page listens to the question with %s; want passthrough=false", u)
	}
	es := voices(spanish.audio(), "es", "fr", "en")
	if es["es"] < 5 || es["fr"] > 0 {
		t.Errorf("the Spanish channel carried %s; want Camille interpreted into Spanish", fmtVoices(es))
	}
	con.waitFor("the question's mic in the console", `!!document.querySelector('#mics-body tr[data-question]:not([data-question=""])')`, 10*time.Second)
	a.screenshots("attendee-question-live")
	speaker.screenshots("speak-question-live")
	con.screenshots("console-question-live")

	// The speaker ends it: the attendee is back to listening, told why.
	speaker.do("end", chromedp.Click(chromedp.CSS(`#questions-list [data-testid="question-end"]`)))
	a.waitFor("the attendee told the moderator ended it", `document.getElementById('ask-notice').dataset.ended === 'moderator' &&
		document.getElementById('ask').dataset.phase === 'idle'`, 10*time.Second)
	harness.WaitFor(t, 10*time.Second, "the question's mic gone", func() bool { _, ok := s.API.Status(r.ID).Mic(qmic.Mic); return !ok })
	a.waitFor("the attendee hearing the original again", `document.getElementById('player').dataset.passthrough === 'true'`, 10*time.Second)
	speaker.waitFor("the speaker page no longer playing the question", `document.getElementById('question-hear').hidden`, 10*time.Second)

	// A second question, declined from the console.
	askQuestion(t, a, "Luc")
	con.waitFor("Luc's question in the console", jsQuestion("Luc"), 10*time.Second)
	con.do("decline", chromedp.Click(chromedp.CSS(`#questions-list [data-testid="question-end"]`)))
	a.waitFor("the attendee told it was declined", `document.getElementById('ask-notice').dataset.ended === 'declined'`, 10*time.Second)

	// A third, withdrawn by the attendee: nothing waits in the queue.
	askQuestion(t, a, "")
	a.click("#ask-end")
	a.waitFor("the question withdrawn", `document.getElementById('ask-notice').dataset.ended === 'self'`, 10*time.Second)
	var list struct {
		Questions []struct{ State string } `json:"questions"`
	}
	if code := s.API.Call("GET", "/api/v1/rooms/"+r.ID+"/questions", "", &list); code != http.StatusOK {
		t.Fatalf("list questions: HTTP %d", code)
	}
	for _, q := range list.Questions {
		if q.State != "ended" {
			t.Errorf("a question is %s at the end, want every one ended", q.State)
		}
	}
	if token := eval[string](a, `JSON.stringify(sessionStorage) + location.href`); strings.Contains(token, "qtk_") {
		t.Errorf("a question token outlived its question in the tab: %s", token)
	}
}
