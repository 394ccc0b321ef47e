package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
)

// recognizer is one long-lived PocketSphinx decoder (pocketsphinx_batch)
// that hears a session's turns one after another.
//
// pocketsphinx_batch reads a control file line by line, and for each line
// decodes the named raw audio file as one utterance and prints its
// hypothesis with the line's name. The control file is its stdin, and each
// turn's "file" is a FIFO we write the turn's 16 kHz PCM into while the
// speaker talks, so decoding goes along with the speech and the
// hypothesis comes out a moment after the turn ends and the FIFO closes.
// The model is loaded once per process, and every hypothesis names its
// turn, so no output is ever matched to the wrong turn.
//
// A fresh decoder normalizes the first utterance's cepstra with the model's
// default mean, which fits few microphones: PocketSphinx recognizes a
// speaker's first sentence worse than the next ones. So a fresh decoder's
// first turn is decoded twice: the first pass (named w<turn>, its
// hypothesis ignored) teaches it the speaker's channel, and the replay
// (u<turn>) gives the result. That costs the first turn of a session about
// a quarter of its length in delay, once.
//
// If the decoder dies or hangs, the turns it held are reported lost and the
// next turn starts a new process.
type recognizer struct {
	log     *slog.Logger
	argv    []string
	dir     string // FIFOs live here
	results chan recResult
	abort   <-chan struct{} // the session is aborted: results are not wanted
	budget  *restartBudget

	mu   sync.Mutex
	proc *sphinxProc
	gen  int
	dead bool // closed: no more processes
}

// recResult is the outcome of one turn: its hypothesis, or lost.
type recResult struct {
	turn uint64
	text string
	lost error // non-nil when the turn was not recognized
}

// sphinxProc is one run of pocketsphinx_batch.
type sphinxProc struct {
	gen     int
	cmd     *exec.Cmd
	ctl     io.WriteCloser
	stderr  *tail
	done    chan struct{} // closed when stdout ended and the process exited
	mu      sync.Mutex
	pending map[uint64]bool // turns begun and not yet resolved
	exited  bool
	fresh   bool // no utterance yet: the next one is decoded twice
}

// reaped waits until the dead process p is reaped, so that current() sees
// it dead and starts another, and returns err (or ctx's error).
func (p *sphinxProc) reaped(ctx context.Context, err error) error {
	select {
	case <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errRecognizerGaveUp means the decoder died too often to keep restarting.
var errRecognizerGaveUp = errors.New("the speech recognizer keeps failing")

// errDecoderDied means the decoder a turn was handed to turned out to be
// dead (it died since the last turn).
var errDecoderDied = errors.New("the speech recognizer exited")

const (
	// fifoOpenTimeout bounds the wait for the decoder to reach a turn: it
	// finishes the previous one first (well under a second) and, for the
	// first turn, loads its model (about a second).
	fifoOpenTimeout = 30 * time.Second
	// fifoWriteTimeout bounds a write into the turn's FIFO: the decoder
	// runs at a fraction of real time, so a FIFO that stays full this long
	// means it hangs.
	fifoWriteTimeout = 10 * time.Second
	// sphinxRestarts are allowed per minute before the session gives up.
	sphinxRestarts = 5
)

func newRecognizer(log *slog.Logger, t *tools, results chan recResult, abort <-chan struct{}) (*recognizer, error) {
	dir, err := os.MkdirTemp("", "babelcast-asr-")
	if err != nil {
		return nil, fmt.Errorf("recognizer: %w", err)
	}
	r := &recognizer{
		log: log, dir: dir, results: results, abort: abort,
		budget: newRestartBudget(sphinxRestarts, time.Minute),
		argv: []string{t.sphinx,
			"-ctl", "/dev/stdin", "-adcin", "yes", "-cepdir", dir, "-cepext", ".raw",
			"-samprate", "16000", "-hmm", t.hmm, "-lm", t.lm, "-dict", t.dict,
			"-hyp", "/dev/stdout",
		},
	}
	return r, nil
}

// start runs a decoder process now, so its model loads while the session
// waits for speech.
func (r *recognizer) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.current()
	return err
}

// current returns the live process, starting one if needed. r.mu is held.
func (r *recognizer) current() (*sphinxProc, error) {
	if r.dead {
		return nil, errors.New("recognizer closed")
	}
	if p := r.proc; p != nil {
		select {
		case <-p.done:
		default:
			return p, nil
		}
		why := p.cmd.ProcessState.String()
		if s := p.stderr.String(); s != "" {
			why += ": " + s
		}
		if !r.budget.take(time.Now()) {
			return nil, fmt.Errorf("%w: pocketsphinx_batch died %d times within a minute (last: %s)", errRecognizerGaveUp, sphinxRestarts, why)
		}
		r.log.Warn("speech recognizer (pocketsphinx_batch) exited; restarting it", "why", why)
	}
	r.gen++
	p, err := r.spawn(r.gen)
	if err != nil {
		return nil, err
	}
	r.proc = p
	return p, nil
}

func (r *recognizer) spawn(gen int) (*sphinxProc, error) {
	cmd := exec.Command(r.argv[0], r.argv[1:]...)
	configureProc(cmd)
	ctl, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	p := &sphinxProc{
		gen: gen, cmd: cmd, ctl: ctl, done: make(chan struct{}), pending: map[uint64]bool{}, fresh: true,
		// PocketSphinx logs a lot of INFO per utterance: keep what explains a failure.
		stderr: newTail(8, func(l string) bool { return !strings.HasPrefix(l, "INFO:") }),
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start pocketsphinx_batch: %w", err)
	}
	var stderrDone sync.WaitGroup
	stderrDone.Add(1)
	go func() { defer stderrDone.Done(); p.stderr.consume(stderr) }()
	go func() {
		r.readHyps(p, stdout)
		stderrDone.Wait()
		_ = cmd.Wait()
		p.mu.Lock()
		p.exited = true
		lost := p.pending
		p.pending = nil
		p.mu.Unlock()
		close(p.done)
		for turn := range lost {
			r.send(recResult{turn: turn, lost: errors.New("the speech recognizer exited during the turn")})
		}
	}()
	return p, nil
}

// hypLine is pocketsphinx_batch's -hyp output: "words (uttid score)".
var hypLine = regexp.MustCompile(`^(.*?)\s*\((u(\d+))\s+-?\d+\)\s*$`)

func (r *recognizer) readHyps(p *sphinxProc, stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		m := hypLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		turn, err := strconv.ParseUint(m[3], 10, 64)
		if err != nil {
			continue
		}
		p.mu.Lock()
		mine := p.pending[turn]
		delete(p.pending, turn)
		p.mu.Unlock()
		if mine {
			r.send(recResult{turn: turn, text: strings.TrimSpace(m[1])})
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
}

// send delivers a turn's result unless the session is aborted.
func (r *recognizer) send(res recResult) {
	select {
	case r.results <- res:
	case <-r.abort:
	}
}

// utterance is a turn being streamed to the decoder.
type utterance struct {
	r     *recognizer
	p     *sphinxProc
	turn  uint64
	f     *os.File
	buf   []byte
	keep  []int16 // the turn's audio, kept for the replay of a first turn
	twice bool
}

// begin hands turn to the decoder and returns once the decoder reads it.
// On error the turn is resolved as lost (its result is sent).
func (r *recognizer) begin(ctx context.Context, turn uint64) (*utterance, error) {
	// A decoder that died since the last turn is only found dead here: the
	// turn then goes to a fresh one (a restart, which counts against the
	// budget) rather than being lost.
	u, err := r.open(ctx, turn)
	if errors.Is(err, errDecoderDied) {
		u, err = r.open(ctx, turn)
	}
	if err != nil {
		r.send(recResult{turn: turn, lost: err})
		return nil, err
	}
	return u, nil
}

// open starts an utterance on the current decoder. When that decoder is
// dead it returns errDecoderDied once the process is reaped, so that the
// next call starts a fresh one.
func (r *recognizer) open(ctx context.Context, turn uint64) (*utterance, error) {
	r.mu.Lock()
	p, err := r.current()
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	twice := p.fresh
	p.fresh = false
	p.mu.Unlock()
	name := "u"
	if twice {
		name = "w" // first pass: its hypothesis is not the result
	}
	f, err := r.fifo(ctx, p, name+strconv.FormatUint(turn, 10))
	if err != nil {
		if errors.Is(err, errDecoderDied) {
			err = p.reaped(ctx, err)
		}
		return nil, err
	}
	// The turn is the decoder's from now on: its hypothesis comes to us,
	// or, if the decoder dies first, its loss. (No hypothesis can come
	// before the audio is written.)
	p.mu.Lock()
	if p.exited {
		p.mu.Unlock()
		_ = f.Close()
		return nil, p.reaped(ctx, errDecoderDied)
	}
	p.pending[turn] = true
	p.mu.Unlock()
	return &utterance{r: r, p: p, turn: turn, f: f, twice: twice}, nil
}

// fifo names a new utterance to the decoder and opens its FIFO for
// writing, once the decoder has reached it.
func (r *recognizer) fifo(ctx context.Context, p *sphinxProc, name string) (*os.File, error) {
	path := filepath.Join(r.dir, name+".raw")
	_ = os.Remove(path)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		return nil, fmt.Errorf("recognizer: mkfifo: %w", err)
	}
	defer os.Remove(path) // once both ends are open the name is not needed
	if _, err := io.WriteString(p.ctl, name+"\n"); err != nil {
		killGroup(p.cmd)
		return nil, fmt.Errorf("%w (write control line: %v)", errDecoderDied, err)
	}
	// Opening a FIFO for writing with O_NONBLOCK fails (ENXIO) until the
	// reader has it open: poll, so a dead decoder cannot hang us.
	deadline := time.Now().Add(fifoOpenTimeout)
	for {
		fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err == nil {
			// Non-blocking fd: os.File makes it pollable, so writes take deadlines.
			return os.NewFile(uintptr(fd), path), nil
		}
		if !errors.Is(err, syscall.ENXIO) && !errors.Is(err, syscall.EINTR) {
			return nil, fmt.Errorf("recognizer: open FIFO: %w", err)
		}
		if time.Now().After(deadline) {
			killGroup(p.cmd)
			return nil, fmt.Errorf("the speech recognizer did not take the turn within %v; restarting it", fifoOpenTimeout)
		}
		select {
		case <-p.done:
			return nil, errDecoderDied
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// write streams 16 kHz samples of the turn to the decoder.
func (u *utterance) write(s []int16) error {
	if u.f == nil {
		return errors.New("utterance already failed")
	}
	if u.twice {
		u.keep = append(u.keep, s...)
	}
	if err := u.send(u.f, s); err != nil {
		u.fail()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("the speech recognizer stopped reading for %v; restarting it", fifoWriteTimeout)
		}
		return fmt.Errorf("the speech recognizer stopped reading: %w", err)
	}
	return nil
}

func (u *utterance) send(f *os.File, s []int16) error {
	u.buf = audio.AppendBytes(u.buf[:0], s)
	_ = f.SetWriteDeadline(time.Now().Add(fifoWriteTimeout))
	_, err := f.Write(u.buf)
	return err
}

// fail gives up on a decoder that does not read: it is killed, which
// resolves its pending turns as lost.
func (u *utterance) fail() {
	_ = u.f.Close()
	u.f = nil
	killGroup(u.p.cmd)
}

// end closes the turn: the decoder finishes it and prints its hypothesis.
// A first turn is then replayed, and its second hypothesis is the result.
func (u *utterance) end(ctx context.Context) {
	if u.f == nil {
		return
	}
	_ = u.f.Close()
	u.f = nil
	if !u.twice {
		return
	}
	f, err := u.r.fifo(ctx, u.p, "u"+strconv.FormatUint(u.turn, 10))
	if err != nil {
		killGroup(u.p.cmd) // resolves the turn as lost
		return
	}
	defer f.Close()
	for off := 0; off < len(u.keep); off += asrRate {
		if err := u.send(f, u.keep[off:min(off+asrRate, len(u.keep))]); err != nil {
			killGroup(u.p.cmd)
			return
		}
	}
	u.keep = nil
}

// close stops the decoder: it finishes the turns it holds (their results
// are sent) unless ctx ends first, then it is killed.
func (r *recognizer) close(ctx context.Context) {
	r.mu.Lock()
	r.dead = true
	p := r.proc
	r.mu.Unlock()
	if p != nil {
		_ = p.ctl.Close() // end of the control file: it exits after the last turn
		select {
		case <-p.done:
		case <-ctx.Done():
			killGroup(p.cmd)
			<-p.done
		}
	}
	_ = os.RemoveAll(r.dir)
}
