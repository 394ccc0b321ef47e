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
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/babelcast/babelcast/internal/room"
)

// translator is one long-lived Apertium pipeline (a language pair's mode,
// every stage in null-flush mode) that translates many lines: each request
// is a line ended by NUL, and the pipeline answers with its translation
// ended by NUL. Loading a pair takes a second or two; a line then takes a
// few milliseconds. One request at a time; sessions of the same target
// language share it.
//
// The apertium wrapper script is not used: its gawk stages buffer in
// null-flush mode. The pipeline is the mode file as apertium-wblank-mode -z
// prints it, run by bash. A pipeline that dies or stops answering is killed
// and started again for the next request.
type translator struct {
	log  *slog.Logger
	pair pair

	mu      sync.Mutex
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *os.File
	rd      *bufio.Reader
	stderr  *tail
	exited  chan struct{}
	budget  *restartBudget
	started bool
	closed  bool
}

// errTranslatorGaveUp means the pipeline died too often to keep restarting.
var errTranslatorGaveUp = errors.New("the translator keeps failing")

const (
	// translateTimeout bounds one line; a pair's first line also waits for
	// it to load.
	translateTimeout = 20 * time.Second
	// aptRestarts are allowed per minute before a request fails outright.
	aptRestarts = 5
)

func newTranslator(log *slog.Logger, p pair) *translator {
	return &translator{log: log.With("pair", p.Mode), pair: p, budget: newRestartBudget(aptRestarts, time.Minute)}
}

// start launches the pipeline. t.mu is held.
func (t *translator) start() error {
	// $1 is lt-proc's generation flag: -n leaves unknown words unmarked
	// (no '*'), as `apertium -u` does. $2 is the tagger's, unused.
	cmd := exec.Command("bash", "-c", t.pair.Pipeline, "apertium-"+t.pair.Mode, "-n", "")
	configureProc(cmd)
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	// Our own pipe, so reads can take a deadline.
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout = pw
	stderr, err := cmd.StderrPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("start Apertium %s: %w", t.pair.Mode, err)
	}
	pw.Close()
	t.cmd, t.in, t.out, t.rd = cmd, in, pr, bufio.NewReader(pr)
	t.stderr = newTail(8, nil)
	t.exited = make(chan struct{})
	go func(exited chan struct{}, tl *tail) {
		tl.consume(stderr)
		_ = cmd.Wait()
		close(exited)
	}(t.exited, t.stderr)
	return nil
}

// stop kills the pipeline. t.mu is held.
func (t *translator) stop() {
	if t.cmd == nil {
		return
	}
	_ = t.in.Close()
	killGroup(t.cmd)
	<-t.exited
	_ = t.out.Close()
	t.cmd = nil
}

// close ends the pipeline for good.
func (t *translator) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.stop()
}

// warm starts the pipeline and waits until it has loaded, so a channel's
// first turn is not held up by it.
func (t *translator) warm(ctx context.Context) error {
	_, err := t.translate(ctx, "hello", nil)
	return err
}

// translate translates one line of English. glossary terms found in it are
// kept (or replaced by their given translation) verbatim.
func (t *translator) translate(ctx context.Context, text string, gl *glossary) (string, error) {
	in := gl.protect(text)
	t.mu.Lock()
	defer t.mu.Unlock()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var out string
		out, err = t.roundTrip(ctx, in)
		if err == nil {
			return clean(out), nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
	return "", err
}

// roundTrip sends one request. t.mu is held.
func (t *translator) roundTrip(ctx context.Context, in string) (string, error) {
	if t.cmd != nil {
		select {
		case <-t.exited:
			t.log.Warn("Apertium pipeline exited; restarting it", "why", t.stderr.String())
			t.stop()
		default:
		}
	}
	if t.cmd == nil {
		if t.closed {
			return "", errors.New("translator closed")
		}
		if t.started && !t.budget.take(time.Now()) {
			return "", fmt.Errorf("%w: Apertium %s was restarted %d times within a minute", errTranslatorGaveUp, t.pair.Mode, aptRestarts)
		}
		if err := t.start(); err != nil {
			return "", err
		}
		t.started = true
	}
	deadline := time.Now().Add(translateTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// A line ends with a newline before the NUL: lt-proc -b waits for the
	// character after a word before flushing otherwise.
	if _, err := io.WriteString(t.in, in+"\n\x00"); err != nil {
		t.log.Warn("Apertium pipeline does not take input; restarting it", "err", err, "why", t.stderr.String())
		t.stop()
		return "", fmt.Errorf("apertium %s: %w", t.pair.Mode, err)
	}
	_ = t.out.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = t.out.SetReadDeadline(time.Now()) })
	out, err := t.rd.ReadString(0)
	stop()
	if err != nil {
		why := "it exited"
		if errors.Is(err, os.ErrDeadlineExceeded) {
			why = "it stopped answering"
		}
		t.log.Warn("Apertium pipeline failed; restarting it", "why", why, "err", err, "stderr", t.stderr.String())
		t.stop()
		return "", fmt.Errorf("apertium %s: %s", t.pair.Mode, why)
	}
	return strings.TrimSuffix(out, "\x00"), nil
}

// escape makes plain text safe for Apertium's stream format, where
// \ [ ] ^ $ / < > @ { } are markup, and drops control characters (a NUL
// would end the request).
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case strings.ContainsRune(`\[]^$/<>@{}`, r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case unicode.IsControl(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// clean turns the pipeline's output into plain text: superblanks (our
// protected glossary terms) are unwrapped, escapes undone, the marks
// Apertium may leave on words it could not handle (#, *, @) removed, and
// spaces normalized.
func clean(s string) string {
	var b strings.Builder
	wordStart := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '\\' && i < len(s):
			r, n = utf8.DecodeRuneInString(s[i:])
			i += n
			b.WriteRune(r)
		case r == '[' || r == ']':
			// superblank delimiters: their content is kept
		case wordStart && (r == '#' || r == '*' || r == '@'):
			continue
		default:
			b.WriteRune(r)
		}
		wordStart = unicode.IsSpace(r)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// glossary is a room's terms for one target language: each is found in the
// recognized English (whole words, any case) and passed through Apertium
// as a superblank, so it comes out as written (or as its given
// translation) and is not translated word by word.
type glossary struct {
	terms []glossTerm
}

type glossTerm struct {
	re  *regexp.Regexp
	out string
}

func newGlossary(entries []room.GlossaryEntry, target string) *glossary {
	g := &glossary{}
	sorted := append([]room.GlossaryEntry(nil), entries...)
	// Longer terms first, so "NATS JetStream" wins over "NATS".
	sort.SliceStable(sorted, func(i, j int) bool { return len(sorted[i].Term) > len(sorted[j].Term) })
	for _, e := range sorted {
		term := strings.TrimSpace(e.Term)
		if term == "" {
			continue
		}
		out := term
		for lang, tr := range e.Translations {
			tr = strings.TrimSpace(tr)
			switch {
			case tr == "":
			case strings.EqualFold(lang, target):
				out = tr
			case baseLang(lang) == baseLang(target) && out == term:
				out = tr
			}
		}
		var parts []string
		for _, w := range strings.Fields(term) {
			parts = append(parts, regexp.QuoteMeta(w))
		}
		re, err := regexp.Compile(`(?i)(^|[^\pL\pN])(` + strings.Join(parts, `[\s-]+`) + `)($|[^\pL\pN])`)
		if err != nil {
			continue
		}
		g.terms = append(g.terms, glossTerm{re: re, out: out})
	}
	return g
}

// protect escapes text for Apertium, with glossary terms as superblanks.
// Longer terms are matched first; matches never overlap.
func (g *glossary) protect(text string) string {
	if g == nil || len(g.terms) == 0 {
		return escape(text)
	}
	type span struct {
		start, end int
		out        string
	}
	var spans []span
	overlaps := func(s, e int) bool {
		for _, sp := range spans {
			if s < sp.end && sp.start < e {
				return true
			}
		}
		return false
	}
	for _, t := range g.terms {
		for pos := 0; pos < len(text); {
			m := t.re.FindStringSubmatchIndex(text[pos:])
			if m == nil {
				break
			}
			s, e := pos+m[4], pos+m[5]
			if !overlaps(s, e) {
				spans = append(spans, span{s, e, t.out})
			}
			pos = e
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(escape(text[last:sp.start]))
		b.WriteString("[" + escape(sp.out) + "]")
		last = sp.end
	}
	b.WriteString(escape(text[last:]))
	return b.String()
}
