package openai

import (
	"fmt"
	"testing"
	"time"
)

type captionLine struct {
	seg   uint64
	text  string
	final bool
}

func collect() (*segmenter, *[]captionLine) {
	var got []captionLine
	return newSegmenter(func(seg uint64, text string, final bool) {
		got = append(got, captionLine{seg, text, final})
	}), &got
}

func TestSegmenterCutsAtSentenceEnds(t *testing.T) {
	g, got := collect()
	now := time.Now()
	for _, d := range []string{"Hola", " a todos.", " Bienvenidos", " al congreso! Y"} {
		g.add(d, now)
	}
	want := []captionLine{
		{1, "Hola", false}, {1, "Hola a todos.", true},
		{2, "Bienvenidos", false}, {2, "Bienvenidos al congreso!", true}, {3, "Y", false},
	}
	if fmt.Sprint(*got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", *got, want)
	}
}

// A pause ends a line; the full stop that arrives after it completes that
// line instead of standing alone.
func TestSegmenterLatePunctuationCompletesThePausedLine(t *testing.T) {
	g, got := collect()
	now := time.Now()
	g.add("[es] frase 1", now)
	g.tick(now.Add(captionIdle))
	g.add(".", now.Add(2*captionIdle))
	g.add("[es] frase 2", now.Add(2*captionIdle))
	want := []captionLine{
		{1, "[es] frase 1", false}, {1, "[es] frase 1", true}, {1, "[es] frase 1.", true},
		{2, "[es] frase 2", false},
	}
	if fmt.Sprint(*got) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", *got, want)
	}
}
