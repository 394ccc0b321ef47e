package record_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio/opus"
	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/test/harness"
)

func store(t *testing.T) *record.Store {
	b := harness.Bus(t)
	return &record.Store{JS: b.JS, Cues: b.Transcript, Recordings: b.Recordings}
}

func TestFormatsCountFromTheRecordsZero(t *testing.T) {
	t.Parallel()
	zero := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	cues := []record.Cue{
		{Start: zero.Add(1500 * time.Millisecond), End: zero.Add(3 * time.Second), Text: "Hola <a todos>", Speaker: "Ana"},
		{Start: zero.Add(time.Hour + 2*time.Minute + 3*time.Second + 4*time.Millisecond), End: zero.Add(time.Hour + 2*time.Minute + 5*time.Second), Text: "two\n\nlines"},
	}
	for format, want := range map[string]string{
		"vtt": "WEBVTT\n\n00:00:01.500 --> 00:00:03.000\n<v Ana>Hola &lt;a todos&gt;\n\n01:02:03.004 --> 01:02:05.000\ntwo lines\n",
		"srt": "1\n00:00:01,500 --> 00:00:03,000\nAna: Hola <a todos>\n\n2\n01:02:03,004 --> 01:02:05,000\ntwo lines\n",
		"txt": "Ana: Hola <a todos>\ntwo lines\n",
	} {
		got, err := record.Format("r", "es", cues, zero, format)
		if err != nil || string(got) != want {
			t.Errorf("%s: %v\n%q\nwant\n%q", format, err, got, want)
		}
	}
	got, _ := record.Format("r", "es", cues, zero, "json")
	if !strings.Contains(string(got), `{"room":"r","lang":"es","cues":[{"start":"2026-12-02T10:00:01.5Z","end":"2026-12-02T10:00:03Z","text":"Hola \u003ca todos\u003e","speaker":"Ana"}`) {
		t.Errorf("json: %s", got)
	}
	if _, err := record.Format("r", "es", cues, zero, "doc"); err == nil {
		t.Error("an unknown format is accepted")
	}
}

// TestOggFillsGapsAndDropsOverlaps: a channel's segments make one Ogg/Opus
// stream from the record's zero, silence where nothing was kept, and a
// segment overlapping the one before (two recorders for a moment) loses
// its overlap.
func TestOggFillsGapsAndDropsOverlaps(t *testing.T) {
	t.Parallel()
	s := store(t)
	ctx := context.Background()
	enc, err := opus.NewEncoder(0)
	if err != nil {
		t.Fatal(err)
	}
	tone := make([]int16, opus.FrameSamples)
	for i := range tone {
		tone[i] = int16(8000 * ((i / 12) % 2))
	}
	segment := func(packets int) []byte {
		var framed []byte
		for range packets {
			p, err := enc.Encode(nil, tone)
			if err != nil {
				t.Fatal(err)
			}
			framed = opus.AppendFramed(framed, p)
		}
		return framed
	}
	zero := time.Now().Truncate(time.Second)
	// 1 s at 0.5 s, 1 s at 3 s, 1 s at 3.5 s (overlapping by 0.5 s).
	for _, at := range []time.Duration{500 * time.Millisecond, 3 * time.Second, 3500 * time.Millisecond} {
		if err := s.PutSegment(ctx, "r", "es", zero.Add(at), 50, segment(50)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddCue(ctx, "r", "es", record.Cue{Start: zero, End: zero.Add(time.Second), Text: "x"}); err != nil {
		t.Fatal(err)
	}
	z, err := s.Zero(ctx, "r")
	if err != nil || !z.Equal(zero) {
		t.Fatalf("zero %v (%v), want %v: the first cue", z, err, zero)
	}
	var buf bytes.Buffer
	found, err := s.WriteOgg(ctx, &buf, "r", "es", z)
	if !found || err != nil {
		t.Fatalf("WriteOgg: %v %v", found, err)
	}
	rd := opus.NewReader(&buf)
	dec, _ := opus.NewDecoder()
	var pcm []int16
	var granule int64
	for {
		p, g, err := rd.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		granule = g
		if pcm, err = dec.Decode(pcm, p); err != nil {
			t.Fatal(err)
		}
	}
	// 0 → 4.5 s: silence to 0.5, tone to 1.5, silence to 3, tone to 4.5.
	if d := time.Duration(len(pcm)) * time.Second / 24000; d != 4500*time.Millisecond {
		t.Errorf("decoded %s, want 4.5 s", d)
	}
	if granule != 4500*48 {
		t.Errorf("last granule %d, want %d", granule, 4500*48)
	}
	loud := func(from, to time.Duration) bool {
		var e float64
		for _, v := range pcm[from.Milliseconds()*24 : to.Milliseconds()*24] {
			e += float64(v) * float64(v)
		}
		return e/float64((to-from).Milliseconds()*24) > 1e5
	}
	for _, c := range []struct {
		from, to time.Duration
		want     bool
	}{{0, 400 * time.Millisecond, false}, {600 * time.Millisecond, 1400 * time.Millisecond, true},
		{1600 * time.Millisecond, 2900 * time.Millisecond, false}, {3100 * time.Millisecond, 4400 * time.Millisecond, true}} {
		if got := loud(c.from, c.to); got != c.want {
			t.Errorf("%s–%s loud %v, want %v", c.from, c.to, got, c.want)
		}
	}
	recs := record.Recordings(mustSegments(t, s))
	if len(recs) != 1 || !recs[0].Start.Equal(zero.Add(500*time.Millisecond)) || !recs[0].End.Equal(zero.Add(4500*time.Millisecond)) {
		t.Errorf("recordings %+v", recs)
	}
	if err := s.DeleteRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if segs := mustSegments(t, s); len(segs) != 0 {
		t.Errorf("%d segments left after DeleteRoom", len(segs))
	}
	if cues, err := s.ReadCues(ctx, "r", ""); err != nil || len(cues) != 0 {
		t.Errorf("cues left after DeleteRoom: %v %v", cues, err)
	}
}

func mustSegments(t *testing.T, s *record.Store) []record.Segment {
	t.Helper()
	segs, err := s.Segments(context.Background(), "r")
	if err != nil {
		t.Fatal(err)
	}
	return segs
}
