// Package cluster tests babelcast on a real three-server NATS cluster
// (nats-server processes, JetStream, replicas 3), the way an operator runs
// it: api+ingest, two translators and a fan-out node as separate
// processes (here, separate app.App instances with their own
// connections), a speaker and listeners, and NATS servers killed with
// kill -9 during the talk.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/client"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/natscluster"
)

const token = "adm_cluster_test"

// Targets with one NATS server of three lost.
const (
	lossTarget   = 10 * time.Second // the organizer API works, new listeners are admitted again
	gapAllowance = 3 * time.Second  // silence beyond a channel's normal pause
	returnTarget = 10 * time.Second // everything back after a server's return
)

// node is one babelcast process of the test.
type node struct {
	name string
	app  *app.App
	logs *harness.Logs
}

// deployment is the cluster, the babelcast processes and the fake OpenAI.
type deployment struct {
	t           *testing.T
	nats        *natscluster.Cluster
	fake        *fakerealtime.Server
	front, fan  *node
	translators []*node
	http        *http.Client
	mu          sync.Mutex
	created     []string // probe rooms the API said it created
	createdN    int
	secrets     []string
}

func (d *deployment) start(name string, roles ...string) *node {
	t := d.t
	logs := &harness.Logs{}
	cfg := app.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), NATSURL: d.nats.URLs(), Roles: roles, Node: name,
		AdminToken: token, Engine: "openai", OpenAIKey: d.fake.APIKey(), RealtimeURL: d.fake.URL(),
		Linger: 5 * time.Second,
		Log:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start %s: %v\n%s", name, err, harness.Tail(logs.String(), 30))
	}
	n := &node{name: name, app: a, logs: logs}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := a.Shutdown(sctx); err != nil {
			t.Logf("shutdown %s: %v", name, err)
		}
		for _, s := range d.secrets {
			if strings.Contains(logs.String(), s) {
				t.Errorf("%s logged a secret", name)
			}
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, harness.Tail(logs.String(), 60))
		}
		if dir := os.Getenv("BABELCAST_E2E_LOGS"); dir != "" {
			_ = os.WriteFile(dir+"/"+t.Name()+"-"+name+".log", []byte(logs.String()), 0o644)
		}
	})
	return n
}

// call makes an organizer API request; status 0 means no answer at all.
func (d *deployment) call(method, path, body string) (int, []byte) {
	req, err := http.NewRequest(method, d.front.app.URL()+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// apiWorks is one organizer's look at the API: the room's status (live
// state), and a new room (a write to the rooms bucket, with the languages
// checked against the live engines). It says what failed, if anything.
func (d *deployment) apiWorks() (ok bool, what string) {
	code, body := d.call("GET", "/api/v1/rooms/talk/status", "")
	if code != http.StatusOK {
		return false, fmt.Sprintf("status %d %s", code, trim(body))
	}
	d.mu.Lock()
	d.createdN++
	id := fmt.Sprintf("probe-%d", d.createdN)
	d.mu.Unlock()
	code, body = d.call("POST", "/api/v1/rooms", `{"id":"`+id+`","source_language":"en","languages":[{"code":"es"}]}`)
	if code != http.StatusCreated {
		return false, fmt.Sprintf("create %d %s", code, trim(body))
	}
	d.mu.Lock()
	d.created = append(d.created, id)
	d.mu.Unlock()
	return true, ""
}

func trim(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// admit opens a new listener on lang and reports whether it got its hello.
func (d *deployment) admit(lang string) (bool, string) {
	u := "ws" + strings.TrimPrefix(d.fan.app.URL(), "http") + "/api/v1/rooms/talk/listen?lang=" + lang
	dialer := websocket.Dialer{HandshakeTimeout: 8 * time.Second}
	conn, resp, err := dialer.Dial(u, nil)
	if err != nil {
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			return false, fmt.Sprintf("%d %s", resp.StatusCode, trim(b))
		}
		return false, err.Error()
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(8 * time.Second))
	for {
		mt, b, err := conn.ReadMessage()
		if err != nil {
			return false, err.Error()
		}
		if mt == websocket.TextMessage && strings.Contains(string(b), `"type":"hello"`) {
			return true, ""
		}
	}
}

// ear is a listener that keeps what it hears: when each audio message came,
// and the final captions.
type ear struct {
	lang     string
	mu       sync.Mutex
	frames   []time.Time
	captions []caption
}

type caption struct {
	at      time.Time
	segment uint64
	text    string
}

func (d *deployment) listen(ctx context.Context, lang string, wg *sync.WaitGroup) *ear {
	e := &ear{lang: lang}
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := client.Listen(ctx, client.ListenOptions{
			Server: d.fan.app.URL(), Room: "talk", Lang: lang, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
			OnAudio: func([]byte) {
				e.mu.Lock()
				e.frames = append(e.frames, time.Now())
				e.mu.Unlock()
			},
			OnMessage: func(typ string, raw []byte) {
				if typ != "caption" {
					return
				}
				var c wire.Caption
				if json.Unmarshal(raw, &c) == nil && c.Final {
					e.mu.Lock()
					e.captions = append(e.captions, caption{time.Now(), c.Segment, c.Text})
					e.mu.Unlock()
				}
			},
		})
		if err != nil && ctx.Err() == nil {
			d.t.Errorf("listener %s: %v", lang, err)
		}
	}()
	return e
}

// longestGap is the longest silence between audio messages heard in
// [from, to] (counting from the last one before from).
func (e *ear) longestGap(from, to time.Time) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	var longest time.Duration
	var prev time.Time
	for _, at := range e.frames {
		if at.After(to) {
			break
		}
		if !at.Before(from) && !prev.IsZero() {
			longest = max(longest, at.Sub(prev))
		}
		prev = at
	}
	if !prev.IsZero() && to.Sub(prev) > longest {
		longest = to.Sub(prev) // silent up to the end of the window
	}
	return longest
}

// heardSince reports whether audio came after t.
func (e *ear) heardSince(t time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.frames) > 0 && e.frames[len(e.frames)-1].After(t)
}

func (e *ear) captionsSince(t time.Time) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, c := range e.captions {
		if c.at.After(t) {
			n++
		}
	}
	return n
}

// speech is endless source-language speech: sentences of 2.5 s with
// pauses of 0.6 s (the fake model ends a sentence, and captions it, at a
// pause of 400 ms).
type speech struct {
	tone []int16
	n    int
}

const sentence, pause = 2500 * audio.Rate / 1000, 600 * audio.Rate / 1000

func (s *speech) Read(dst []int16) (int, error) {
	for i := range dst {
		if s.n%(sentence+pause) < sentence {
			dst[i] = s.tone[s.n%len(s.tone)]
		} else {
			dst[i] = 0
		}
		s.n++
	}
	return len(dst), nil
}

// probe runs check every interval from start until done says stop, and
// returns when it recovered: the end of the first success after the last
// failure (zero if it never failed), and the last failure's reason.
type probeResult struct {
	failed    int
	by        map[string]int // failures by the first word of their reason (status, create)
	recovered time.Time
	lastWhy   string
	firstFail time.Time
}

func probe(ctx context.Context, interval time.Duration, check func() (bool, string)) <-chan probeResult {
	out := make(chan probeResult, 1)
	go func() {
		r := probeResult{by: map[string]int{}}
		var failing bool
		for ctx.Err() == nil {
			ok, why := check()
			now := time.Now()
			switch {
			case !ok:
				if r.failed == 0 {
					r.firstFail = now
				}
				r.failed++
				r.lastWhy = why
				first, _, _ := strings.Cut(why, " ")
				r.by[first]++
				failing = true
			case failing:
				r.recovered = now
				failing = false
			}
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
		if failing {
			r.recovered = time.Time{}
			r.lastWhy += " (still failing at the end)"
		}
		out <- r
		close(out)
	}()
	return out
}

// figure is one measured phase, for the log and the README.
type figure struct {
	phase          string
	killed         string
	api, admission time.Duration
	gaps, normal   map[string]time.Duration
}

// TestLosingANATSServer runs a talk on a three-server NATS cluster and
// kills (kill -9) the server leading the rooms bucket, then the one
// leading the live state, then the one leading the leases, each brought
// back before the next; then two servers at once. With one server lost:
// the organizer API and new listeners work again within 10 s, no listened
// channel is silent more than 3 s beyond its normal pause, and no room,
// key or caption is lost. With two lost: the API says 503 in its JSON
// error shape, and everything is back within 10 s of one's return.
func TestLosingANATSServer(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-server NATS cluster and a talk: not in -short")
	}
	d := &deployment{t: t, http: &http.Client{Timeout: 10 * time.Second}}
	d.nats = natscluster.Start(t, natscluster.Options{})
	d.fake = fakerealtime.New(t, fakerealtime.Options{})
	d.secrets = []string{d.fake.APIKey(), token}
	d.front = d.start("front", app.RoleAPI, app.RoleIngest)
	d.fan = d.start("fan", app.RoleFanout)
	d.translators = []*node{d.start("trA", app.RoleTranslate), d.start("trB", app.RoleTranslate)}
	admin := d.nats.Connect()

	harness.WaitFor(t, 20*time.Second, "both translators' engines", func() bool {
		code, body := d.call("GET", "/api/v1/engines", "")
		var e struct {
			Engines []struct{} `json:"engines"`
		}
		return code == 200 && json.Unmarshal(body, &e) == nil && len(e.Engines) == 2
	})
	code, body := d.call("POST", "/api/v1/rooms", `{"id":"talk","name":"Talk","source_language":"en","languages":[{"code":"es"},{"code":"fr"}],"passcode":""}`)
	if code != http.StatusCreated {
		t.Fatalf("create room: %d %s", code, body)
	}
	var talk struct {
		SpeakerKey string `json:"speaker_key"`
	}
	_ = json.Unmarshal(body, &talk)
	d.secrets = append(d.secrets, talk.SpeakerKey)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	ears := map[string]*ear{}
	for _, lang := range []string{"es", "fr", "en"} {
		ears[lang] = d.listen(ctx, lang, &wg)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := client.Speak(ctx, client.SpeakOptions{
			Server: d.front.app.URL(), Room: "talk", Key: talk.SpeakerKey, Realtime: true,
			Source: &speech{tone: audio.Samples(fakerealtime.Speech("en", time.Second))},
		})
		if err != nil && ctx.Err() == nil {
			t.Errorf("speaker: %v", err)
		}
	}()
	began := time.Now()
	harness.WaitFor(t, 30*time.Second, "es and fr heard", func() bool {
		return ears["es"].heardSince(began.Add(2*time.Second)) && ears["fr"].heardSince(began.Add(2*time.Second))
	})
	time.Sleep(8 * time.Second) // a baseline of normal pauses

	var figures []figure
	for _, bucket := range []string{subject.BucketRooms, livestate.Bucket, subject.BucketLeases} {
		f := d.loseOne(ctx, admin, ears, bucket)
		figures = append(figures, f)
	}
	figures = append(figures, d.loseTwo(ctx, admin, ears))

	// Nothing lost: the room and its key as they were, every room the API
	// said it created, captions through every phase.
	code, body = d.call("GET", "/api/v1/rooms/talk", "")
	if code != 200 || !strings.Contains(string(body), talk.SpeakerKey) || !strings.Contains(string(body), `"code":"fr"`) {
		t.Errorf("the room after the losses: %d %s", code, trim(body))
	}
	code, body = d.call("GET", "/api/v1/rooms", "")
	var list struct {
		Rooms []struct {
			ID string `json:"id"`
		} `json:"rooms"`
	}
	if code != 200 || json.Unmarshal(body, &list) != nil {
		t.Fatalf("list rooms: %d %s", code, trim(body))
	}
	have := map[string]bool{}
	for _, r := range list.Rooms {
		have[r.ID] = true
	}
	d.mu.Lock()
	for _, id := range d.created {
		if !have[id] {
			t.Errorf("room %s was created (201) and is gone", id)
		}
	}
	t.Logf("%d rooms created during the test, all there", len(d.created))
	d.mu.Unlock()
	for _, lang := range []string{"es", "fr"} {
		checkCaptions(t, ears[lang])
	}

	t.Log("figures (one server of three killed, by the bucket it led; then two):")
	for _, f := range figures {
		t.Logf("  %-22s killed %s: API %v, new listener %v, longest gap es %v fr %v source %v (normal %v / %v / %v)",
			f.phase, f.killed, f.api.Round(100*time.Millisecond), f.admission.Round(100*time.Millisecond),
			f.gaps["es"].Round(100*time.Millisecond), f.gaps["fr"].Round(100*time.Millisecond), f.gaps["en"].Round(100*time.Millisecond),
			f.normal["es"].Round(100*time.Millisecond), f.normal["fr"].Round(100*time.Millisecond), f.normal["en"].Round(100*time.Millisecond))
	}
}

// checkCaptions: final captions kept coming, numbered without a hole (a
// hole is a caption lost; a restart from 1 a session lost). A line may be
// finalized twice (its text completed after a first final).
func checkCaptions(t *testing.T, e *ear) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.captions) < 5 {
		t.Errorf("%s: %d final captions in the whole talk", e.lang, len(e.captions))
		return
	}
	var segs []uint64
	for _, c := range e.captions {
		segs = append(segs, c.segment)
	}
	for i := 1; i < len(segs); i++ {
		if segs[i] != segs[i-1] && segs[i] != segs[i-1]+1 {
			t.Errorf("%s: caption segments %v: %d after %d", e.lang, segs, segs[i], segs[i-1])
			return
		}
	}
}

// loseOne kills the server leading bucket, measures, and brings it back.
func (d *deployment) loseOne(ctx context.Context, admin *nats.Conn, ears map[string]*ear, bucket string) figure {
	t := d.t
	t.Helper()
	stream := "KV_" + bucket
	var victim string
	harness.WaitFor(t, 30*time.Second, "a leader for "+stream, func() bool {
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		leader, current, err := natscluster.StreamLeader(lctx, admin, stream)
		victim = leader
		return err == nil && leader != "" && len(current) == 3
	})
	var led []string
	for _, st := range streams {
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if leader, _, err := natscluster.StreamLeader(lctx, admin, st); err == nil && leader == victim {
			led = append(led, st)
		}
		cancel()
	}
	killed := time.Now()
	f := newFigure("leader of "+bucket, victim, ears, killed)
	t.Logf("kill -9 %s (leads %v) at %s", victim, led, killed.Format("15:04:05.000"))
	d.nats.Server(victim).Kill()
	d.observe(ctx, ears, &f, killed, lossTarget, func() { time.Sleep(15 * time.Second) })
	for _, lang := range []string{"es", "fr"} {
		if ears[lang].captionsSince(killed) == 0 {
			t.Errorf("%s: no %s caption since the kill", f.phase, lang)
		}
	}
	d.nats.Server(victim).Restart()
	d.awaitCurrent(ctx, admin)
	return f
}

// newFigure starts the figures of a phase that begins at t0, with each
// channel's normal pause: its longest silence in the 8 s before.
func newFigure(phase, killed string, ears map[string]*ear, t0 time.Time) figure {
	f := figure{phase: phase, killed: killed, gaps: map[string]time.Duration{}, normal: map[string]time.Duration{}}
	for lang, e := range ears {
		f.normal[lang] = e.longestGap(t0.Add(-8*time.Second), t0)
	}
	return f
}

// observe probes the organizer API and new listeners' admission until wait
// returns, fills f from t0 on, and checks it: the API and admission back
// within target, no channel silent longer than its normal pause and
// gapAllowance.
func (d *deployment) observe(ctx context.Context, ears map[string]*ear, f *figure, t0 time.Time, target time.Duration, wait func()) {
	t := d.t
	t.Helper()
	pctx, stop := context.WithCancel(ctx)
	apiDone := probe(pctx, 300*time.Millisecond, d.apiWorks)
	admitDone := probe(pctx, 300*time.Millisecond, func() (bool, string) { return d.admit("es") })
	wait()
	stop()
	api, admission := <-apiDone, <-admitDone
	end := time.Now()
	for lang, e := range ears {
		f.gaps[lang] = e.longestGap(t0, end)
	}
	f.api, f.admission = since(t0, api), since(t0, admission)
	t.Logf("%s: API failed %d times %v (last: %s), back after %v; listeners refused %d times (last: %s), back after %v; gaps %v (normal %v)",
		f.phase, api.failed, api.by, api.lastWhy, f.api, admission.failed, admission.lastWhy, f.admission, f.gaps, f.normal)
	if api.failed > 0 && (api.recovered.IsZero() || f.api > target) {
		t.Errorf("%s: the organizer API worked again after %v, want < %v", f.phase, f.api, target)
	}
	if admission.failed > 0 && (admission.recovered.IsZero() || f.admission > target) {
		t.Errorf("%s: new listeners admitted again after %v, want < %v", f.phase, f.admission, target)
	}
	for lang, gap := range f.gaps {
		if gap > f.normal[lang]+gapAllowance {
			t.Errorf("%s: channel %s silent for %v, its normal pause %v", f.phase, lang, gap, f.normal[lang])
		}
	}
}

func since(t0 time.Time, r probeResult) time.Duration {
	if r.failed == 0 {
		return 0
	}
	if r.recovered.IsZero() {
		return time.Hour
	}
	return r.recovered.Sub(t0)
}

// streams are the buckets' streams, all of which must be whole again
// before the next server is killed.
var streams = []string{"KV_" + subject.BucketRooms, "KV_" + livestate.Bucket, "KV_" + subject.BucketLeases}

// awaitCurrent waits until every bucket has a leader and three current
// replicas.
func (d *deployment) awaitCurrent(ctx context.Context, admin *nats.Conn) {
	d.t.Helper()
	harness.WaitFor(d.t, 60*time.Second, "every bucket whole again", func() bool {
		for _, st := range streams {
			lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			leader, current, err := natscluster.StreamLeader(lctx, admin, st)
			cancel()
			if err != nil || leader == "" || len(current) != 3 {
				return false
			}
		}
		return true
	})
}

// unavailable checks an answer of the API while JetStream cannot work: a
// 503 in the API's error shape.
func unavailable(code int, body []byte) (bool, string) {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if code != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
		return false, fmt.Sprintf("%d %s", code, trim(body))
	}
	return true, ""
}

// loseTwo kills two servers of three: no bucket has a quorum. The API says
// 503 (JSON error shape) without hanging; when one server returns,
// everything is back within returnTarget.
func (d *deployment) loseTwo(ctx context.Context, admin *nats.Conn, ears map[string]*ear) figure {
	t := d.t
	a, b := d.nats.Servers[0], d.nats.Servers[1]
	killed := time.Now()
	f := newFigure("two of three", a.Name+"+"+b.Name, ears, killed)
	t.Logf("kill -9 %s and %s at %s", a.Name, b.Name, killed.Format("15:04:05.000"))
	a.Kill()
	b.Kill()
	// Writes cannot be made: the API says so (503) at once, without
	// hanging. Reads of the rooms answer from the surviving replica (nobody
	// can change them meanwhile); the live state, which nobody can update,
	// is refused once it is older than livestate.FrozenAfter.
	var last string
	harness.WaitFor(t, 15*time.Second, "503 for a new room", func() bool {
		var ok bool
		ok, last = unavailable(d.call("POST", "/api/v1/rooms", `{"id":"never","source_language":"en"}`))
		return ok
	})
	// The live state read from the survivor is refused once its newest
	// entry is older than FrozenAfter: by then, for sure.
	time.Sleep(time.Until(killed.Add(livestate.FrozenAfter + time.Second)))
	for range 3 {
		began := time.Now()
		if ok, why := unavailable(d.call("GET", "/api/v1/rooms/talk/status", "")); !ok {
			t.Errorf("status with two servers down: %s, want 503", why)
		}
		if ok, why := unavailable(d.call("POST", "/api/v1/rooms", `{"id":"never","source_language":"en"}`)); !ok {
			t.Errorf("create with two servers down: %s, want 503", why)
		}
		if took := time.Since(began); took > 12*time.Second {
			t.Errorf("two answers took %v with two servers down", took)
		}
	}
	if code, body := d.call("GET", "/api/v1/rooms/talk", ""); code != http.StatusOK || !strings.Contains(string(body), `"id":"talk"`) {
		t.Errorf("the room read with two servers down: %d %s", code, trim(body))
	}
	_ = last
	time.Sleep(2 * time.Second)
	returned := time.Now()
	t.Logf("%s returns at %s", a.Name, returned.Format("15:04:05.000"))
	a.Start()
	var heard time.Time
	d.observe(ctx, ears, &f, returned, returnTarget, func() {
		harness.WaitFor(t, 3*returnTarget, "audio on every channel after the return", func() bool {
			for _, e := range ears {
				if !e.heardSince(returned) {
					return false
				}
			}
			heard = time.Now()
			return true
		})
		time.Sleep(max(0, returnTarget+2*time.Second-time.Since(returned)))
	})
	t.Logf("%s: audio on every channel %v after the return", f.phase, heard.Sub(returned))
	if heard.Sub(returned) > returnTarget {
		t.Errorf("%s: audio on every channel %v after a server's return", f.phase, heard.Sub(returned))
	}
	d.nats.AwaitReady()
	b.Start()
	d.nats.AwaitReady()
	d.awaitCurrent(ctx, admin)
	return f
}
