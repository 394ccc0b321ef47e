package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// cue is a VTT or SRT cue as the test reads it back.
type cue struct {
	start, end time.Duration
	text       string
}

var cueTimes = regexp.MustCompile(`^(\d\d):(\d\d):(\d\d)[.,](\d\d\d) --> (\d\d):(\d\d):(\d\d)[.,](\d\d\d)$`)

// parseCues reads the cues of a VTT or SRT file, failing on a malformed one.
func parseCues(t *testing.T, what string, body []byte) []cue {
	t.Helper()
	var out []cue
	lines := strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		m := cueTimes.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		n := make([]int64, 8)
		for k := range n {
			n[k], _ = strconv.ParseInt(m[k+1], 10, 64)
		}
		at := func(h, mi, s, ms int64) time.Duration {
			return time.Duration(((h*60+mi)*60+s)*1000+ms) * time.Millisecond
		}
		c := cue{start: at(n[0], n[1], n[2], n[3]), end: at(n[4], n[5], n[6], n[7])}
		if i+1 < len(lines) {
			c.text = lines[i+1]
		}
		if c.text == "" {
			t.Errorf("%s: cue at %s has no text", what, c.start)
		}
		out = append(out, c)
	}
	return out
}

// decodeOgg decodes an Ogg/Opus file with the real decoder: its PCM.
func decodeOgg(t *testing.T, what string, b []byte) []byte {
	t.Helper()
	rd := opus.NewReader(bytes.NewReader(b))
	dec, err := opus.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	for {
		p, _, err := rd.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if pcm, err = dec.Decode(pcm, p); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	return audio.Bytes(pcm)
}

// voiced are the stretches of pcm that carry lang's tone, 100 ms at a
// time, merged across gaps shorter than gap.
func voiced(pcm []byte, lang string, gap time.Duration) [][2]time.Duration {
	const block = 2400 * 2
	var runs [][2]time.Duration
	for i := 0; i+block <= len(pcm); i += block {
		b := pcm[i : i+block]
		if fakerealtime.RMS(b) < 0.01 || fakerealtime.Goertzel(b, fakerealtime.ToneHz(lang)) < 0.5 {
			continue
		}
		at := pcmDuration(i)
		if n := len(runs); n > 0 && at-runs[n-1][1] <= gap {
			runs[n-1][1] = at + 100*time.Millisecond
		} else {
			runs = append(runs, [2]time.Duration{at, at + 100*time.Millisecond})
		}
	}
	return runs
}

// TestRecordOfATalk is the end-to-end check: a recorded room's
// talk, its transcripts (VTT, SRT, JSON) and recordings (Ogg/Opus) of
// every channel, checked cue by cue against the turns spoken and against
// the recording; again after a restart on the same data directory; then
// gone with the room.
func TestRecordOfATalk(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	room := s.API.CreateRoom(`{"id":"rec","name":"Recorded","source_language":"en",
		"languages":[{"code":"es"}],"record":true}`)
	tk := newTalk(24*time.Second, 1500*time.Millisecond, 3*time.Second, 1200*time.Millisecond, 2*time.Second)
	n := len(tk.turns)
	talkLen := pcmDuration(len(tk.pcm))
	speakAll(t, s, room, newPCMSource(tk.pcm))

	// Nobody listens: the record does not depend on listeners.
	channels := map[string]string{"floor": "en", "en": "en", "es": "es"} // channel → the tone it carries
	harness.WaitFor(t, 30*time.Second, "every turn in every channel's transcript", func() bool {
		for lang := range channels {
			if got := strings.Count(string(s.API.Do("GET", "/api/v1/rooms/rec/transcript?lang="+lang+"&format=txt", "").Body), "\n"); got < n {
				return false
			}
		}
		return true
	})
	// A recording's last segment is kept once its channel has been quiet
	// for a moment (3 s): then its end stays in the past.
	harness.WaitFor(t, 15*time.Second, "every channel's recording complete", func() bool {
		var list struct{ Recordings []struct{ End time.Time } }
		s.API.Call("GET", "/api/v1/rooms/rec/recordings", "", &list)
		for _, r := range list.Recordings {
			if time.Since(r.End) < 4*time.Second {
				return false
			}
		}
		return len(list.Recordings) == 3
	})
	check := func(when string) {
		t.Helper()
		var list struct {
			Recordings []struct {
				Lang       string
				Start, End time.Time
				Bytes      int64
			}
		}
		if st := s.API.Call("GET", "/api/v1/rooms/rec/recordings", "", &list); st != 200 {
			t.Fatalf("%s: recordings: %d", when, st)
		}
		if len(list.Recordings) != 3 {
			t.Fatalf("%s: recordings %+v, want floor, en, es", when, list.Recordings)
		}
		for _, r := range list.Recordings {
			t.Logf("%s: recording %s: %s, %d bytes (%.1f KiB a minute)", when, r.Lang, r.End.Sub(r.Start).Round(time.Millisecond),
				r.Bytes, float64(r.Bytes)/1024/r.End.Sub(r.Start).Minutes())
		}
		for lang, tone := range channels {
			res := s.API.Do("GET", "/api/v1/rooms/rec/recordings/"+lang+".ogg", "")
			if res.Status != 200 || res.Header.Get("Content-Type") != "audio/ogg" {
				t.Fatalf("%s: %s.ogg: %d %s", when, lang, res.Status, res.Body)
			}
			pcm := decodeOgg(t, lang+".ogg", res.Body)
			dur := pcmDuration(len(pcm))
			runs := voiced(pcm, tone, 600*time.Millisecond)
			var first time.Duration
			if len(runs) > 0 {
				first = runs[0][0]
			}
			// The recording starts at the room's zero; the talk in it
			// from its first turn on.
			heard := dur - first
			spoken := talkLen - 500*time.Millisecond // the talk's lead-in silence is before its first turn
			t.Logf("%s: %s.ogg: %s decoded, first turn at %s, talk %s, %d voiced runs", when, lang, dur.Round(time.Millisecond),
				first, spoken, len(runs))
			if lang != "es" && (heard < spoken*98/100 || heard > spoken*102/100) {
				t.Errorf("%s: %s recording holds %s of talk after its first turn, want %s ±2 %%", when, lang, heard, spoken)
			}
			if lang == "es" && (heard < tk.speech || heard > spoken+3*time.Second) {
				t.Errorf("%s: es recording holds %s after its first turn, want the talk's %s plus the interpretation's lag", when, heard, spoken)
			}
			if len(runs) != n {
				t.Errorf("%s: %s recording has %d turns of speech, want %d", when, lang, len(runs), n)
			}
			for _, format := range []string{"vtt", "srt"} {
				res := s.API.Do("GET", "/api/v1/rooms/rec/transcript?lang="+lang+"&format="+format, "")
				if res.Status != 200 {
					t.Fatalf("%s: %s transcript %s: %d %s", when, lang, format, res.Status, res.Body)
				}
				if format == "vtt" && !bytes.HasPrefix(res.Body, []byte("WEBVTT\n")) {
					t.Errorf("%s: %s.vtt does not start with WEBVTT", when, lang)
				}
				cues := parseCues(t, lang+"."+format, res.Body)
				if len(cues) != n {
					t.Errorf("%s: %s.%s has %d cues, want %d (one a turn):\n%s", when, lang, format, len(cues), n, res.Body)
					continue
				}
				for k, c := range cues {
					if !strings.Contains(c.text, fmt.Sprintf("sentence %d.", k+1)) {
						t.Errorf("%s: %s.%s cue %d is %q, want turn %d", when, lang, format, k+1, c.text, k+1)
					}
					if c.end < c.start || k > 0 && c.start < cues[k-1].start {
						t.Errorf("%s: %s.%s cue %d at %s → %s after %s: times do not increase", when, lang, format, k+1, c.start, c.end, cues[k-1].start)
					}
					if k >= len(runs) {
						continue
					}
					// Aligned with the recording: the cue starts and ends with its turn's speech, within 0.5 s.
					r := runs[k]
					if format == "vtt" {
						t.Logf("%s: %s cue %d %s→%s, speech %s→%s", when, lang, k+1, c.start, c.end, r[0], r[1])
					}
					if absDur(c.start-r[0]) > 500*time.Millisecond || absDur(c.end-r[1]) > 500*time.Millisecond {
						t.Errorf("%s: %s.%s cue %d %s→%s not aligned with its speech %s→%s in the recording",
							when, lang, format, k+1, c.start, c.end, r[0], r[1])
					}
				}
			}
		}
	}
	check("live")
	s.Restart()
	check("after a restart")

	// Catching up, as an attendee (no token): the last lines, then older ones.
	type earlierLines struct {
		Captions []struct{ Text, Start string }
		More     bool
	}
	var last, older earlierLines
	s.API.As("").Do("GET", "/api/v1/rooms/rec/earlier?lang=es&limit=2", "").Decode(t, &last)
	if len(last.Captions) != 2 || !last.More || !strings.Contains(last.Captions[1].Text, fmt.Sprintf("sentence %d.", n)) {
		t.Fatalf("the last 2 lines: %+v", last)
	}
	s.API.As("").Do("GET", "/api/v1/rooms/rec/earlier?lang=es&limit=100&before="+last.Captions[0].Start, "").Decode(t, &older)
	if len(older.Captions) != n-2 || older.More || !strings.Contains(older.Captions[0].Text, "sentence 1.") {
		t.Errorf("the lines before the last 2: %+v", older)
	}

	// Bad input changes nothing and says what is wrong.
	for path, want := range map[string]int{
		"/api/v1/rooms/rec/transcript?lang=xx&format=vtt":    400,
		"/api/v1/rooms/rec/transcript?lang=es&format=doc":    400,
		"/api/v1/rooms/rec/transcript?format=vtt":            400,
		"/api/v1/rooms/rec/recordings/xx.ogg":                400,
		"/api/v1/rooms/rec/recordings/es.mp3":                404,
		"/api/v1/rooms/nope/transcript?lang=es":              404,
		"/api/v1/rooms/rec/earlier?lang=es&before=yesterday": 400,
		"/api/v1/rooms/rec/earlier?lang=es&limit=0":          400,
		"/api/v1/rooms/rec/earlier?lang=xx":                  400,
	} {
		if res := s.API.Do("GET", path, ""); res.Status != want || !bytes.Contains(res.Body, []byte(`"message"`)) {
			t.Errorf("GET %s: %d %s, want %d with a message", path, res.Status, res.Body, want)
		}
	}
	if st := s.API.As("").Call("GET", "/api/v1/rooms/rec/transcript?lang=es", "", nil); st != http.StatusUnauthorized {
		t.Errorf("transcript without a token of a room without public transcripts: %d, want 401", st)
	}

	// Deleting the room deletes its record.
	if st := s.API.Call("DELETE", "/api/v1/rooms/rec", "", nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	s.API.CreateRoom(`{"id":"rec","source_language":"en","languages":[{"code":"es"}]}`)
	harness.WaitFor(t, 10*time.Second, "no record left of the deleted room", func() bool {
		var list struct{ Recordings []any }
		s.API.Call("GET", "/api/v1/rooms/rec/recordings", "", &list)
		tr := s.API.Do("GET", "/api/v1/rooms/rec/transcript?lang=es&format=txt", "")
		return len(list.Recordings) == 0 && tr.Status == 200 && len(tr.Body) == 0
	})
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// recordedBytes is the audio kept of room: its recordings' bytes by
// channel, and whether its audio was pruned.
func recordedBytes(t *testing.T, s *service.Service, roomID string) (map[string]int64, bool) {
	t.Helper()
	var list struct {
		Recordings []struct {
			Lang  string
			Bytes int64
		}
		Pruned *struct{ Bytes int64 }
	}
	if st := s.API.Call("GET", "/api/v1/rooms/"+roomID+"/recordings", "", &list); st != 200 {
		t.Fatalf("recordings of %s: %d", roomID, st)
	}
	out := map[string]int64{}
	for _, r := range list.Recordings {
		out[r.Lang] = r.Bytes
	}
	return out, list.Pruned != nil
}

func sum(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// speakBriefly speaks a few seconds to a recorded room and waits until its
// recordings are complete.
func speakBriefly(t *testing.T, s *service.Service, room harness.Room) map[string]int64 {
	t.Helper()
	speakAll(t, s, room, newPCMSource(fakerealtime.Speech("en", 4*time.Second)))
	var got map[string]int64
	harness.WaitFor(t, 20*time.Second, room.ID+"'s recordings complete", func() bool {
		var list struct{ Recordings []struct{ End time.Time } }
		s.API.Call("GET", "/api/v1/rooms/"+room.ID+"/recordings", "", &list)
		for _, r := range list.Recordings {
			if time.Since(r.End) < 4*time.Second {
				return false
			}
		}
		got, _ = recordedBytes(t, s, room.ID)
		return len(list.Recordings) == 3
	})
	return got
}

// TestRecordBoundedByRetentionAndSize: --record-max-bytes removes the
// oldest room's audio first (its transcripts stay, the console is told),
// and --retention removes transcripts and recordings alike; a room that
// does not ask to be recorded keeps no audio.
func TestRecordBoundedByRetentionAndSize(t *testing.T) {
	t.Parallel()
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}})
	plain := s.API.CreateRoom(`{"id":"plain","source_language":"en","languages":[{"code":"es"}]}`)
	s.API.CreateRoom(`{"id":"old","source_language":"en","languages":[{"code":"es"}],"record":true}`)
	old := speakBriefly(t, s, harness.Room{ID: "old", SpeakerKey: roomKey(t, s, "old")})
	t.Logf("a 4 s talk recorded: %v bytes", old)

	// Room "plain" is not recorded: transcripts only. A listener makes its translator run.
	aud := newAudience(t, s, plain.ID)
	aud.listen("es", "")
	aud.await("es")
	speakAll(t, s, plain, newPCMSource(fakerealtime.Speech("en", 2*time.Second)))
	harness.WaitFor(t, 15*time.Second, "plain's transcript", func() bool {
		return len(s.API.Do("GET", "/api/v1/rooms/plain/transcript?lang=es&format=txt", "").Body) > 0
	})
	aud.stop()
	if got, _ := recordedBytes(t, s, "plain"); len(got) != 0 {
		t.Errorf("room plain, not recorded, has recordings %v", got)
	}

	// Bound the audio to 1.5 times one talk: a second room's talk puts the
	// first room's audio over it.
	bound := sum(old) * 3 / 2
	s.RestartWith(func(c *app.Config) { c.RecordMaxBytes = uint64(bound) })
	s.API.CreateRoom(`{"id":"new","source_language":"en","languages":[{"code":"es"}],"record":true}`)
	fresh := speakBriefly(t, s, harness.Room{ID: "new", SpeakerKey: roomKey(t, s, "new")})
	harness.WaitFor(t, 10*time.Second, "old's audio pruned", func() bool {
		_, pruned := recordedBytes(t, s, "old")
		return pruned
	})
	now, _ := recordedBytes(t, s, "old")
	if sum(now)+sum(fresh) > bound {
		t.Errorf("audio kept: %d + %d bytes, over the bound %d", sum(now), sum(fresh), bound)
	}
	if got, pruned := recordedBytes(t, s, "new"); pruned || sum(got) != sum(fresh) {
		t.Errorf("the newest room lost audio: %v (pruned %v), recorded %v", got, pruned, fresh)
	}
	if tr := s.API.Do("GET", "/api/v1/rooms/old/transcript?lang=es&format=txt", ""); len(tr.Body) == 0 {
		t.Error("old's transcript went with its audio")
	}
	if !strings.Contains(s.Logs.String(), "a room's oldest audio removed") {
		t.Error("pruning is not logged")
	}

	// Retention: everything goes once older than it.
	s.RestartWith(func(c *app.Config) { c.Retention = 2 * time.Second })
	harness.WaitFor(t, 15*time.Second, "the record past its retention gone", func() bool {
		for _, id := range []string{"old", "new", "plain"} {
			if got, _ := recordedBytes(t, s, id); len(got) > 0 {
				return false
			}
			if tr := s.API.Do("GET", "/api/v1/rooms/"+id+"/transcript?lang=es&format=txt", ""); len(tr.Body) > 0 {
				return false
			}
		}
		return true
	})
}

// roomKey is a room's speaker key.
func roomKey(t *testing.T, s *service.Service, id string) string {
	t.Helper()
	var r harness.Room
	s.API.Call("GET", "/api/v1/rooms/"+id, "", &r)
	return r.SpeakerKey
}
