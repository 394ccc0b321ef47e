package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/client"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/testlog"
)

const adminToken = "adm_test_token"

// service is a running babelcast with the fake Realtime server behind it.
type service struct {
	app  *app.App
	fake *fakerealtime.Server
	logs *testlog.Buffer
}

func startService(t *testing.T, fopts fakerealtime.Options) *service {
	return startServiceWith(t, fopts, nil)
}

// startServiceWith starts every role in-process (embedded NATS, openai
// engine on the fake); configure may adjust the configuration first.
func startServiceWith(t *testing.T, fopts fakerealtime.Options, configure func(*app.Config)) *service {
	t.Helper()
	fake := fakerealtime.New(t, fopts)
	logs := &testlog.Buffer{}
	cfg := app.Config{
		Addr:        "127.0.0.1:0",
		DataDir:     t.TempDir(),
		AdminToken:  adminToken,
		Engine:      "openai",
		OpenAIKey:   fake.APIKey(),
		RealtimeURL: fake.URL(),
		Linger:      3 * time.Second,
		Log:         slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if configure != nil {
		configure(&cfg)
	}
	a, err := app.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for _, secret := range []string{cfg.OpenAIKey, adminToken} {
			if secret != "" && strings.Contains(logs.String(), secret) {
				t.Error("a secret reached the log")
			}
		}
		if t.Failed() {
			t.Logf("service log:\n%s", testlog.Tail(logs.String(), 80))
		}
		// BABELCAST_E2E_LOGS=dir keeps every test's whole service log.
		if dir := os.Getenv("BABELCAST_E2E_LOGS"); dir != "" {
			name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + ".log"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(logs.String()), 0o644); err != nil {
				t.Logf("keep the service log: %v", err)
			}
		}
	})
	return &service{app: a, fake: fake, logs: logs}
}

// api calls the organizer API and decodes the JSON answer into out.
func (s *service) api(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	return callAPI(t, s.app.URL(), method, path, body, out)
}

func callAPI(t *testing.T, base, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
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

// createRoom creates a room from its JSON and fails the test otherwise.
func (s *service) createRoom(t *testing.T, body string) createdRoom {
	t.Helper()
	var room createdRoom
	if code := s.api(t, "POST", "/api/v1/rooms", body, &room); code != http.StatusCreated {
		t.Fatalf("create room: %d", code)
	}
	return room
}

// status reads a room's status.
func (s *service) status(t *testing.T, roomID string) status {
	t.Helper()
	var st status
	if code := s.api(t, "GET", "/api/v1/rooms/"+roomID+"/status", "", &st); code != http.StatusOK {
		t.Fatalf("status of %s: %d", roomID, code)
	}
	return st
}

type createdRoom struct {
	ID         string `json:"id"`
	SpeakerKey string `json:"speaker_key"`
}

type status struct {
	Speaker struct {
		Connected bool `json:"connected"`
	} `json:"speaker"`
	Floor struct {
		Listeners int `json:"listeners"`
	} `json:"floor"`
	Languages []langStatus `json:"languages"`
}

type langStatus struct {
	Code           string  `json:"code"`
	Listeners      int     `json:"listeners"`
	State          string  `json:"state"`
	Error          string  `json:"error"`
	Kind           string  `json:"kind"`
	Node           string  `json:"node"`
	SessionSeconds float64 `json:"session_seconds"`
}

func (s status) listeners(lang string) int {
	return s.lang(lang).Listeners
}

// lang is one language's status; Listeners is -1 when the room lacks it.
func (s status) lang(code string) langStatus {
	for _, l := range s.Languages {
		if l.Code == code {
			return l
		}
	}
	return langStatus{Code: code, Listeners: -1}
}

// heard is one audio message as a listener received it.
type heard struct {
	at    time.Time
	bytes int
}

// delayAt is one `delay` message: the server's lag figure when received.
type delayAt struct {
	at  time.Time
	lag time.Duration
}

// recording collects what one listener receives.
type recording struct {
	mu       sync.Mutex
	pcm      []byte
	frames   []heard
	captions []string          // final captions in arrival order (a line may be finalized twice)
	lines    map[uint64]string // caption segment → its last text
	final    map[uint64]bool
	delays   []delayAt
	states   []string
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

// lineTexts is the last text of every caption line that became final, in
// segment order: what a reader of the captions ends up seeing.
func (r *recording) lineTexts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var segs []uint64
	for seg := range r.lines {
		if r.final[seg] {
			segs = append(segs, seg)
		}
	}
	slices.Sort(segs)
	out := make([]string, len(segs))
	for i, seg := range segs {
		out[i] = r.lines[seg]
	}
	return out
}

func (r *recording) heardFrames() []heard {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.frames)
}

func (r *recording) delayFigures() []delayAt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.delays)
}

// firstAudioAfter is when the first audio carrying lang's tone arrived
// after t0 (zero if none did).
func (r *recording) firstAudioAfter(t0 time.Time, lang string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	off := 0
	for _, f := range r.frames {
		b := r.pcm[off : off+f.bytes]
		off += f.bytes
		if f.at.After(t0) && fakerealtime.RMS(b) > 0.01 && fakerealtime.Goertzel(b, fakerealtime.ToneHz(lang)) > 0.5 {
			return f.at
		}
	}
	return time.Time{}
}

func listen(ctx context.Context, t *testing.T, s *service, roomID, lang, out string, wg *sync.WaitGroup) *recording {
	return listenTo(ctx, t, s.app.URL(), roomID, lang, out, wg)
}

// listenTo records a channel with the listen client until ctx ends.
func listenTo(ctx context.Context, t *testing.T, server, roomID, lang, out string, wg *sync.WaitGroup) *recording {
	rec := &recording{lines: map[uint64]string{}, final: map[uint64]bool{}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := client.Listen(ctx, client.ListenOptions{
			Server: server, Room: roomID, Lang: lang, OutPath: out,
			OnAudio: func(pcm []byte) {
				now := time.Now()
				rec.mu.Lock()
				rec.pcm = append(rec.pcm, pcm...)
				rec.frames = append(rec.frames, heard{at: now, bytes: len(pcm)})
				rec.mu.Unlock()
			},
			OnMessage: func(typ string, raw []byte) {
				now := time.Now()
				var m struct {
					Text    string `json:"text"`
					Final   bool   `json:"final"`
					Segment uint64 `json:"segment"`
					MS      int64  `json:"ms"`
					State   string `json:"state"`
					Message string `json:"message"`
				}
				if json.Unmarshal(raw, &m) != nil {
					return
				}
				rec.mu.Lock()
				defer rec.mu.Unlock()
				switch typ {
				case "caption":
					rec.lines[m.Segment] = m.Text
					if m.Final {
						rec.final[m.Segment] = true
						rec.captions = append(rec.captions, m.Text)
					}
				case "delay":
					rec.delays = append(rec.delays, delayAt{at: now, lag: time.Duration(m.MS) * time.Millisecond})
				case "state":
					rec.states = append(rec.states, m.State)
				}
			},
		})
		if err != nil {
			t.Errorf("listen %s: %v", lang, err)
		}
	}()
	return rec
}

// pcmSource is a SampleReader over samples in memory that notes when it
// was first read: the moment the speak client starts its clock.
type pcmSource struct {
	samples []int16
	pos     int
	mu      sync.Mutex
	began   time.Time
}

func newPCMSource(pcm []byte) *pcmSource { return &pcmSource{samples: audio.Samples(pcm)} }

func (p *pcmSource) Read(dst []int16) (int, error) {
	p.mu.Lock()
	if p.began.IsZero() {
		p.began = time.Now()
	}
	p.mu.Unlock()
	if p.pos >= len(p.samples) {
		return 0, io.EOF
	}
	n := copy(dst, p.samples[p.pos:])
	p.pos += n
	return n, nil
}

// start is when the speak client began streaming (zero before).
func (p *pcmSource) start() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.began
}

// speakInBackground streams src to the room at real time until stop is
// called (or src ends); stop waits for the speak client to hang up.
func speakInBackground(t *testing.T, server string, room createdRoom, src client.SampleReader) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := client.Speak(ctx, client.SpeakOptions{
			Server: server, Room: room.ID, Key: room.SpeakerKey, Source: src, Realtime: true,
		})
		if err != nil && ctx.Err() == nil {
			t.Errorf("speak: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// endlessSpeech is a SampleReader of source-language speech with no end:
// the speaker of a test that stops it through the speak client's context.
type endlessSpeech struct {
	tone  []int16
	pos   int
	burst int // samples of speech before a pause; 0: no pauses
	pause int
	n     int
}

func newEndlessSpeech(burst, pause time.Duration) *endlessSpeech {
	return &endlessSpeech{
		tone:  audio.Samples(fakerealtime.Speech("en", time.Second)),
		burst: int(burst.Seconds() * audio.Rate), pause: int(pause.Seconds() * audio.Rate),
	}
}

func (e *endlessSpeech) Read(dst []int16) (int, error) {
	for i := range dst {
		if e.burst > 0 && e.n%(e.burst+e.pause) >= e.burst {
			dst[i] = 0
		} else {
			dst[i] = e.tone[e.pos]
		}
		e.pos = (e.pos + 1) % len(e.tone) // 1 s of a whole number of cycles: seamless
		e.n++
	}
	return len(dst), nil
}

// talk is a scripted speech: numbered turns of speech with pauses between.
type talk struct {
	pcm    []byte
	turns  []time.Duration // speech of each turn
	speech time.Duration   // all speech, pauses left out
}

// newTalk scripts turns of speech lasting [minTurn, maxTurn] with pauses of
// [minPause, maxPause] until about length, from a fixed seed so every run
// speaks the same talk.
func newTalk(length, minTurn, maxTurn, minPause, maxPause time.Duration) talk {
	rng := rand.New(rand.NewPCG(3, 7))
	between := func(lo, hi time.Duration) time.Duration {
		ms := lo.Milliseconds() + rng.Int64N(hi.Milliseconds()-lo.Milliseconds()+1)
		return time.Duration(ms/20*20) * time.Millisecond // whole 20 ms frames
	}
	var tk talk
	tk.pcm = append(tk.pcm, fakerealtime.Silence(500*time.Millisecond)...)
	for total := time.Duration(0); total < length; {
		turn, pause := between(minTurn, maxTurn), between(minPause, maxPause)
		tk.pcm = append(tk.pcm, fakerealtime.Speech("en", turn)...)
		tk.pcm = append(tk.pcm, fakerealtime.Silence(pause)...)
		tk.turns = append(tk.turns, turn)
		tk.speech += turn
		total += turn + pause
	}
	return tk
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

// pcmDuration is the play time of PCM16 mono 24 kHz.
func pcmDuration(n int) time.Duration {
	return time.Duration(n/2) * time.Second / audio.Rate
}

// quantiles returns the median and maximum of ds.
func quantiles(ds []time.Duration) (median, maximum time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)-1]
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
