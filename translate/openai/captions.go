package openai

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	captionIdle   = 1500 * time.Millisecond // a line ends after this long without deltas
	captionMaxLen = 240                     // bytes; longer lines are cut at a space
)

// segmenter turns a stream of transcript deltas into caption lines: each
// update carries the whole line so far, and a line is final at a sentence
// end, after captionIdle without deltas, or when finish is called.
type segmenter struct {
	emit func(segment uint64, text string, final bool)
	next uint64 // number of the next line
	cur  uint64
	text string
	open bool
	last time.Time
	// closed is the last line ended by the idle timer, kept so that
	// punctuation arriving after the pause completes it rather than
	// standing as a line of its own.
	closed     string
	closedSeg  uint64
	closedIdle bool
}

func newSegmenter(emit func(uint64, string, bool)) *segmenter {
	return &segmenter{emit: emit, next: 1}
}

// add appends a delta. Deltas are append-only text: spaces come with them.
func (g *segmenter) add(delta string, now time.Time) {
	if delta == "" {
		return
	}
	g.last = now
	if !g.open {
		delta = strings.TrimLeftFunc(delta, unicode.IsSpace)
		if delta == "" {
			return
		}
		if p := leadingPunct(delta); p != "" && g.closedIdle {
			// The rest of a line that a pause ended early: send it again,
			// completed, under its own segment number.
			g.closed += p
			g.emit(g.closedSeg, g.closed, true)
			delta = strings.TrimLeftFunc(delta[len(p):], unicode.IsSpace)
			if delta == "" {
				return
			}
		}
		g.closedIdle = false
		g.start(delta)
	} else {
		g.text += delta
	}
	for {
		i := sentenceEnd(g.text)
		if i < 0 && len(g.text) > captionMaxLen {
			i = strings.LastIndexFunc(g.text[:captionMaxLen], unicode.IsSpace)
			if i <= 0 {
				i = captionMaxLen
				for i < len(g.text) && !utf8.RuneStart(g.text[i]) {
					i++
				}
			}
		}
		if i < 0 {
			g.emit(g.cur, strings.TrimSpace(g.text), false)
			return
		}
		line, rest := strings.TrimSpace(g.text[:i]), strings.TrimLeftFunc(g.text[i:], unicode.IsSpace)
		g.open = false
		g.emit(g.cur, line, true)
		if rest == "" {
			return
		}
		g.start(rest)
	}
}

func (g *segmenter) start(text string) {
	g.open = true
	g.cur = g.next
	g.next++
	g.text = text
}

// tick ends a line that has had no delta for captionIdle.
func (g *segmenter) tick(now time.Time) {
	if g.open && now.Sub(g.last) >= captionIdle {
		g.finish()
		g.closedIdle = g.closed != ""
	}
}

// leadingPunct returns the sentence punctuation (and closing quotes) that s
// starts with.
func leadingPunct(s string) string {
	j := 0
	for j < len(s) {
		r, n := utf8.DecodeRuneInString(s[j:])
		if !strings.ContainsRune(`.!?…,;:。！？、"'”’»)]」』`, r) {
			break
		}
		j += n
	}
	return s[:j]
}

// finish ends the current line, if any.
func (g *segmenter) finish() {
	if !g.open {
		return
	}
	g.open = false
	g.closed, g.closedSeg = "", 0
	if t := strings.TrimSpace(g.text); t != "" {
		g.closed, g.closedSeg = t, g.cur
		g.emit(g.cur, t, true)
	}
}

// sentenceEnd returns the index just past the first sentence end in s
// (terminator plus closing quotes), or -1. ASCII terminators count only
// before a space or at the end; full-width ones anywhere.
func sentenceEnd(s string) int {
	for i, r := range s {
		switch r {
		case '.', '!', '?', '…', '؟', '।':
		case '。', '！', '？':
			return skipClosers(s, i+utf8.RuneLen(r))
		default:
			continue
		}
		j := skipClosers(s, i+utf8.RuneLen(r))
		for j < len(s) && strings.ContainsRune(".!?…", rune(s[j])) {
			j++
		}
		if j == len(s) {
			return j
		}
		if r2, _ := utf8.DecodeRuneInString(s[j:]); unicode.IsSpace(r2) {
			return j
		}
	}
	return -1
}

func skipClosers(s string, j int) int {
	for j < len(s) {
		r, n := utf8.DecodeRuneInString(s[j:])
		if !strings.ContainsRune(`"'”’»)]」』`, r) {
			break
		}
		j += n
	}
	return j
}
