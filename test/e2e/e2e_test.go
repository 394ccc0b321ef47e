// Package e2e runs babelcast end to end in-process: `serve` with every role
// and an embedded NATS, the openai engine pointed at the fake Realtime server,
// a speaker streaming a file with the speak client, and listeners recording
// with the listen client.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/client"
	"github.com/babelcast/babelcast/test/fakerealtime"
)

const adminToken = "adm_test_token"

// service is a running babelcast with the fake Realtime server behind it.
type service struct {
	app  *app.App
	fake *fakerealtime.Server
	logs *syncBuffer
}

func startService(t *testing.T, fopts fakerealtime.Options) *service {
	t.Helper()
	fake := fakerealtime.New(t, fopts)
	logs := &syncBuffer{}
	a, err := app.Start(context.Background(), app.Config{
		Addr:        "127.0.0.1:0",
		DataDir:     t.TempDir(),
		AdminToken:  adminToken,
		Engine:      "openai",
		OpenAIKey:   fake.APIKey(),
		RealtimeURL: fake.URL(),
		Linger:      3 * time.Second,
		Log:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if strings.Contains(logs.String(), fake.APIKey()) || strings.Contains(logs.String(), adminToken) {
			t.Error("a secret reached the log")
		}
		if t.Failed() {
			t.Logf("service log:\n%s", tail(logs.String(), 80))
		}
	})
	return &service{app: a, fake: fake, logs: logs}
}

// api calls the organizer API and decodes the JSON answer into out.
func (s *service) api(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, s.app.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

type createdRoom struct {
	ID         string `json:"id"`
	SpeakerKey string `json:"speaker_key"`
}

// recording collects what one listener receives.
type recording struct {
	mu       sync.Mutex
	pcm      []byte
	captions []string
}

func (r *recording) audio() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.pcm)
}

func (r *recording) finalCaptions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.captions...)
}

func listen(ctx context.Context, t *testing.T, s *service, roomID, lang, out string, wg *sync.WaitGroup) *recording {
	rec := &recording{}
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := client.Listen(ctx, client.ListenOptions{
			Server: s.app.URL(), Room: roomID, Lang: lang, OutPath: out,
			OnAudio: func(pcm []byte) {
				rec.mu.Lock()
				rec.pcm = append(rec.pcm, pcm...)
				rec.mu.Unlock()
			},
			OnMessage: func(typ string, raw []byte) {
				if typ != "caption" {
					return
				}
				var c struct {
					Text  string `json:"text"`
					Final bool   `json:"final"`
				}
				if json.Unmarshal(raw, &c) == nil && c.Final {
					rec.mu.Lock()
					rec.captions = append(rec.captions, c.Text)
					rec.mu.Unlock()
				}
			},
		})
		if err != nil {
			t.Errorf("listen %s: %v", lang, err)
		}
	}()
	return rec
}

// speechFile writes a 48 kHz stereo WAV of speech bursts in the source
// language (what the fake hears as speech) with pauses between them, so the
// server must downmix and resample, and turns end.
func speechFile(t *testing.T, bursts int) string {
	t.Helper()
	var mono []int16
	for i := 0; i < bursts; i++ {
		mono = append(mono, audio.Samples(fakerealtime.Speech("en", 1500*time.Millisecond))...)
		mono = append(mono, audio.Samples(fakerealtime.Silence(900*time.Millisecond))...)
	}
	r := audio.NewResampler(24000, 48000)
	up := append(r.Process(mono), r.Flush()...)
	stereo := make([]int16, 0, 2*len(up))
	for _, s := range up {
		stereo = append(stereo, s, s)
	}
	path := filepath.Join(t.TempDir(), "talk.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := audio.NewWAVWriter(f, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSamples(stereo); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSpeakerToListenersThroughBothSessionKinds is issue 2's end-to-end
// check: a room with Spanish (the dedicated translation model) and Dutch
// (an instructed realtime session), a speaker streaming a file, and
// listeners of each channel and of the floor.
func TestSpeakerToListenersThroughBothSessionKinds(t *testing.T) {
	s := startService(t, fakerealtime.Options{})
	var room createdRoom
	if code := s.api(t, "POST", "/api/v1/rooms", `{"id":"keynote","name":"Keynote","source_language":"en",
		"languages":[{"code":"es"},{"code":"nl","voice":"marin"}]}`, &room); code != http.StatusCreated {
		t.Fatalf("create room: %d", code)
	}

	ctx, stopListening := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	dir := t.TempDir()
	es := listen(ctx, t, s, room.ID, "es", filepath.Join(dir, "es.wav"), &wg)
	nl := listen(ctx, t, s, room.ID, "nl", filepath.Join(dir, "nl.wav"), &wg)
	floor := listen(ctx, t, s, room.ID, "en", filepath.Join(dir, "floor.wav"), &wg)
	waitFor(t, 10*time.Second, "three listeners in the status", func() bool {
		var st status
		s.api(t, "GET", "/api/v1/rooms/keynote/status", "", &st)
		return st.Floor.Listeners == 1 && st.listeners("es") == 1 && st.listeners("nl") == 1
	})

	src, err := audio.Open(speechFile(t, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := client.Speak(context.Background(), client.SpeakOptions{
		Server: s.app.URL(), Room: room.ID, Key: room.SpeakerKey, Source: src, Realtime: true,
	}); err != nil {
		t.Fatalf("speak: %v", err)
	}

	// Each channel must carry the translation of all three bursts (the fake
	// speaks as long as it heard speech), and the floor the speech itself.
	speech := 3 * 1500 * time.Millisecond
	waitFor(t, 20*time.Second, "translations of every burst", func() bool {
		return duration(es.audio(), "es") >= speech*9/10 && duration(nl.audio(), "nl") >= speech*9/10 &&
			len(es.finalCaptions()) >= 3 && len(nl.finalCaptions()) >= 3
	})
	waitFor(t, 10*time.Second, "floor audio", func() bool { return duration(floor.audio(), "en") >= speech*9/10 })
	waitFor(t, 10*time.Second, "floor captions", func() bool { return len(floor.finalCaptions()) >= 1 })
	stopListening()
	wg.Wait()

	langs := []string{"en", "es", "nl"}
	for lang, rec := range map[string]*recording{"es": es, "nl": nl, "en": floor} {
		pcm := rec.audio()
		if got := fakerealtime.DetectLanguage(pcm, langs); got != lang {
			t.Errorf("%s listeners hear %q", lang, got)
		}
		// Audio from their own session only: no trace of another channel.
		for _, other := range langs {
			if other == lang {
				continue
			}
			if share := fakerealtime.Goertzel(pcm, fakerealtime.ToneHz(other)); share > 0.02 {
				t.Errorf("%s listeners got %.0f%% of their energy from %s", lang, share*100, other)
			}
		}
	}
	for lang, rec := range map[string]*recording{"es": es, "nl": nl} {
		for _, c := range rec.finalCaptions() {
			if !strings.HasPrefix(c, "["+lang+"]") {
				t.Errorf("%s caption %q is not from the %s session", lang, c, lang)
			}
		}
	}
	if c := floor.finalCaptions(); !strings.Contains(strings.Join(c, " "), "source sentence") {
		t.Errorf("floor captions %q are not the speaker's words", c)
	}
	// One session per channel, of the right kind.
	if n := s.fake.OpenedFor(fakerealtime.Translate, "es"); n != 1 {
		t.Errorf("%d translation sessions for es, want 1", n)
	}
	if n := s.fake.Opened(fakerealtime.Realtime); n != 1 {
		t.Errorf("%d realtime sessions, want 1 (nl)", n)
	}
	if n := s.fake.CancelledResponses(); n != 0 {
		t.Errorf("%d responses cancelled: a translation was cut off", n)
	}
	// The recordings are valid WAV files holding what was heard.
	for _, lang := range langs {
		f, err := os.Open(filepath.Join(dir, lang+".wav"))
		if lang == "en" {
			f, err = os.Open(filepath.Join(dir, "floor.wav"))
		}
		if err != nil {
			t.Fatal(err)
		}
		wr, err := audio.NewWAVReader(f)
		if err != nil {
			t.Fatalf("%s recording: %v", lang, err)
		}
		if wr.Format.SampleRate != 24000 || wr.Format.Channels != 1 {
			t.Errorf("%s recording format %+v", lang, wr.Format)
		}
		f.Close()
	}
}

type status struct {
	Speaker struct {
		Connected bool `json:"connected"`
	} `json:"speaker"`
	Floor struct {
		Listeners int `json:"listeners"`
	} `json:"floor"`
	Languages []struct {
		Code      string `json:"code"`
		Listeners int    `json:"listeners"`
		State     string `json:"state"`
		Error     string `json:"error"`
	} `json:"languages"`
}

func (s status) listeners(lang string) int {
	for _, l := range s.Languages {
		if l.Code == lang {
			return l.Listeners
		}
	}
	return -1
}

// duration is how much of pcm carries lang's tone, as audio time.
func duration(pcm []byte, lang string) time.Duration {
	const block = 2400 * 2 // 100 ms
	var n int
	for i := 0; i+block <= len(pcm); i += block {
		b := pcm[i : i+block]
		if fakerealtime.RMS(b) > 0.01 && fakerealtime.Goertzel(b, fakerealtime.ToneHz(lang)) > 0.5 {
			n++
		}
	}
	return time.Duration(n) * 100 * time.Millisecond
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling: these are states reached over the network, with no event to await
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
