package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/app"
	"github.com/babelcast/babelcast/test/fakerealtime"
	"github.com/babelcast/babelcast/test/harness"
	"github.com/babelcast/babelcast/test/harness/service"
)

// translatorProcess is a `babelcast serve --roles translate` child process.
type translatorProcess struct {
	node string
	cmd  *exec.Cmd
	logs *harness.Logs
	done chan struct{} // closed when the process has exited
}

// buildBinary builds cmd/babelcast into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "babelcast")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/babelcast/babelcast/cmd/babelcast")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startTranslator runs a translator node joining the service's NATS, with
// the openai engine on the fake. The process is killed in t.Cleanup,
// whatever happens to the test.
func startTranslator(t *testing.T, bin string, s *service.Service, node string) *translatorProcess {
	t.Helper()
	p := &translatorProcess{node: node, logs: &harness.Logs{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "serve", "--roles", "translate", "--nats", s.App().NATSURL(), "--nats-nkey", s.App().NATSKeyFile(),
		"--engine", "openai", "--realtime-url", s.Fake.URL(), "--node", node,
		"--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "debug")
	p.cmd.Env = append(os.Environ(), "OPENAI_API_KEY="+s.Fake.APIKey())
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", node, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		<-p.done
		if strings.Contains(p.logs.String(), s.Fake.APIKey()) {
			t.Errorf("%s logged the API key", node)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", node, harness.Tail(p.logs.String(), 60))
		}
		if dir := os.Getenv("BABELCAST_E2E_LOGS"); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, t.Name()+"-"+node+".log"), []byte(p.logs.String()), 0o644)
		}
	})
	return p
}

// kill ends the process as kill -9 does: no shutdown, no lease released.
func (p *translatorProcess) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
	}
}

// TestKilledTranslatorCostsOneChannelUnderFiveSeconds is the failover
// check with real processes: the api, ingest and fanout roles in-process
// (with the embedded NATS), two translator processes. Killing the one that
// owns Spanish silences the Spanish listener for less than 5 s, and then
// exactly one session serves Spanish.
func TestKilledTranslatorCostsOneChannelUnderFiveSeconds(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	s := service.Start(t, service.Options{Fake: &fakerealtime.Options{}, Config: func(c *app.Config) {
		c.Roles = []string{app.RoleAPI, app.RoleIngest, app.RoleFanout}
		c.Node = "front"
		c.NATSListen = "127.0.0.1:0" // the translator processes join here
	}})
	procs := map[string]*translatorProcess{}
	for _, node := range []string{"trA", "trB"} {
		procs[node] = startTranslator(t, bin, s, node)
	}
	harness.WaitFor(t, 30*time.Second, "both translator nodes", func() bool {
		var e struct {
			Engines []struct {
				Node string `json:"node"`
			} `json:"engines"`
		}
		s.API.Call("GET", "/api/v1/engines", "", &e)
		return len(e.Engines) == 2
	})

	room := s.API.CreateRoom(`{"id":"failover","name":"Failover","source_language":"en","languages":[{"code":"es"}]}`)
	aud := newAudience(t, s, room.ID)
	es := aud.listen("es", "")
	aud.await("es")
	// Speech without pauses: the translation model then speaks without
	// pauses too, and any silence the listener meets is the failover's.
	speakInBackground(t, s.URL(), room, newEndlessSpeech(0, 0))

	var owner string
	harness.WaitFor(t, 15*time.Second, "es active", func() bool {
		ls := s.API.Status(room.ID).Lang("es")
		owner = ls.Node
		return ls.State == "active" && procs[owner] != nil
	})
	harness.WaitFor(t, 10*time.Second, "3 s of Spanish", func() bool { return duration(es.audio(), "es") >= 3*time.Second })
	victim := procs[owner]
	killed := time.Now()
	t.Logf("killing %s at %s", owner, killed.UTC().Format("15:04:05.000"))
	victim.kill()
	<-victim.done
	t.Logf("killed %s, the owner of es", owner)

	var survivor string
	harness.WaitFor(t, 15*time.Second, "another node active for es", func() bool {
		ls := s.API.Status(room.ID).Lang("es")
		survivor = ls.Node
		return ls.State == "active" && survivor != owner
	})
	harness.WaitFor(t, 10*time.Second, "Spanish again", func() bool {
		f := es.heardFrames()
		return len(f) > 0 && f[len(f)-1].at.After(killed.Add(time.Second))
	})
	tookOver := time.Now()
	// Listen on for a while: the survivor's audio flows on, the fake
	// notices the dead process's connection is gone.
	harness.WaitFor(t, 5*time.Second, "one es session open", func() bool {
		return openNow(s.Fake, "es") == 1 && time.Since(tookOver) > 2*time.Second
	})
	aud.stop()

	// The gap: from the last audio heard before the kill to the first after.
	frames := es.heardFrames()
	var before, after time.Time
	for _, f := range frames {
		if !f.at.After(killed) {
			before = f.at
		} else if after.IsZero() {
			after = f.at
		}
	}
	if before.IsZero() || after.IsZero() {
		t.Fatalf("no audio around the kill (last before %v, first after %v)", before, after)
	}
	gap := after.Sub(before)
	// And the longest silence from the kill on, in case the first frame
	// after was a stray one already on its way.
	var longest time.Duration
	prev := before
	for _, f := range frames {
		if f.at.After(killed) {
			longest = max(longest, f.at.Sub(prev))
			prev = f.at
		}
	}
	t.Logf("failover %s → %s: listener gap %v (longest silence after the kill %v)", owner, survivor,
		gap.Round(10*time.Millisecond), longest.Round(10*time.Millisecond))
	if gap >= 5*time.Second || longest >= 5*time.Second {
		t.Errorf("the es listener heard nothing for %v (longest %v) after its translator was killed, want < 5 s", gap, longest)
	}
	if n := openNow(s.Fake, "es"); n != 1 {
		t.Errorf("%d es sessions open after the failover, want 1", n)
	}
	if n := s.Fake.OpenedFor(fakerealtime.Translate, "es"); n != 2 {
		t.Errorf("%d es sessions opened, want 2 (one per owner)", n)
	}
	if !strings.Contains(procs[survivor].logs.String(), "channel lease taken") {
		t.Errorf("%s never took the es lease", survivor)
	}
}
