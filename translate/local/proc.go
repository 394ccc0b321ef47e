package local

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// configureProc makes a helper process its own process group, so a shell
// pipeline is stopped whole. No death signal is needed for when babelcast
// itself dies: every helper reads its work from a pipe we hold, sees its
// end and exits. (Pdeathsig would fire when the forking OS thread exits,
// which Go may do.)
//
// A helper gets only the environment it needs (childEnv): never the
// process's secrets (OPENAI_API_KEY, BABELCAST_ADMIN_TOKEN, …), which a
// helper has no use for and could leak in a crash report or a core file.
func configureProc(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = childEnv(os.Environ())
}

// childEnv keeps of env what the helpers (bash, Apertium, PocketSphinx,
// espeak-ng) read: where programs and libraries are, the home and
// temporary directories, the time zone, and their own settings; and sets
// a UTF-8 locale.
func childEnv(env []string) []string {
	keep := []string{"PATH", "HOME", "TMPDIR", "TZ", "LD_LIBRARY_PATH"}
	prefixes := []string{"APERTIUM", "ESPEAK", "POCKETSPHINX", "SPHINX", "LTTOOLBOX", "CG3"}
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		ok := slices.Contains(keep, name)
		for _, p := range prefixes {
			ok = ok || strings.HasPrefix(name, p)
		}
		if ok {
			out = append(out, kv)
		}
	}
	return append(out, "LC_ALL=C.UTF-8", "LANG=C.UTF-8")
}

// killGroup stops a helper process and every process of its group.
func killGroup(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Process.Kill()
}

// tail keeps the last lines a helper wrote on stderr, so a crash can be
// explained in the log without keeping its whole chatter.
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
	keep  func(string) bool // lines worth keeping; nil keeps all
}

func newTail(max int, keep func(string) bool) *tail { return &tail{max: max, keep: keep} }

// consume reads r to its end, keeping the last lines; run it in a goroutine.
func (t *tail) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || (t.keep != nil && !t.keep(line)) {
			continue
		}
		t.mu.Lock()
		if len(t.lines) == t.max {
			copy(t.lines, t.lines[1:])
			t.lines = t.lines[:t.max-1]
		}
		t.lines = append(t.lines, line)
		t.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r) // a line too long: keep draining
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, " | ")
}

// restartBudget limits how often a helper process may be restarted: a
// helper that keeps dying is a broken installation, not bad luck.
type restartBudget struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	times  []time.Time
}

func newRestartBudget(max int, window time.Duration) *restartBudget {
	return &restartBudget{max: max, window: window}
}

// take records a restart and reports whether it is still within budget.
func (b *restartBudget) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := b.times[:0]
	for _, t := range b.times {
		if now.Sub(t) < b.window {
			keep = append(keep, t)
		}
	}
	b.times = append(keep, now)
	return len(b.times) <= b.max
}
