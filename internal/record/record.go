// Package record is the record of an event: every final caption of every
// channel (cues, in a JetStream stream) and, for rooms that ask for it,
// every channel's audio as Ogg/Opus (segments, in a JetStream object
// store). The fan-out role writes it (fanout/record.go); the api role reads
// it back as transcripts and recordings, and deletes it with its room.
//
// Times are wall-clock times of the talk as the channel's listeners lived
// it. The record's zero is the first thing kept for the room (a segment of
// audio or a cue, whichever came first): VTT and SRT count from it, and
// every channel's recording starts at it (silence until its first audio),
// so a cue at 00:01:02 is heard at 1:02 into every recording of the room.
package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the stores (internal/bus opens them with the others).
const (
	// Stream keeps cues: one message a final caption line, on
	// CueSubject(room, lang).
	Stream = "babelcast_transcript"
	// Bucket keeps audio segments, named by SegmentName.
	Bucket = "babelcast_recordings"
	// DefaultRetention bounds how long the record is kept.
	DefaultRetention = 30 * 24 * time.Hour
)

const cuePrefix = "babelcast_transcript."

// StreamConfig is the cue stream's configuration (replicas and MaxAge are
// set where it is opened).
func StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: Stream, Description: "babelcast transcripts: final captions of every channel",
		Subjects: []string{cuePrefix + ">"}, Storage: jetstream.FileStorage,
		MaxMsgSize: 64 << 10, Discard: jetstream.DiscardOld,
	}
}

// BucketConfig is the recordings bucket's configuration (replicas and TTL
// are set where it is opened).
func BucketConfig() jetstream.ObjectStoreConfig {
	return jetstream.ObjectStoreConfig{Bucket: Bucket, Description: "babelcast recordings: Ogg/Opus segments of every channel",
		Storage: jetstream.FileStorage}
}

// CueSubject is where a channel's cues are kept. lang is a language code
// or "floor"; neither holds a dot.
func CueSubject(room, lang string) string { return cuePrefix + room + "." + lang }

// Cue is one final caption line of a channel.
type Cue struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Text  string    `json:"text"`
	// Speaker and SourceLanguage: who spoke, and in what language, where
	// known (on an interpretation: whom and what it interprets).
	Speaker        string `json:"speaker,omitempty"`
	SourceLanguage string `json:"source_language,omitempty"`
	// Line identifies the line within the recorder run that kept it: a
	// line finalized twice (the second time with its full stop) is kept
	// twice, and read back once, as its last version.
	Line string `json:"line,omitempty"`
	// Original is true for what was said in the original (the channel's
	// own language), false for an interpretation.
	Original bool `json:"original,omitempty"`
}

// Store reads and writes the record.
type Store struct {
	JS         jetstream.JetStream
	Cues       jetstream.Stream
	Recordings jetstream.ObjectStore
	Log        *slog.Logger
}

func (s *Store) logger() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// AddCue keeps a cue of channel lang of room.
func (s *Store) AddCue(ctx context.Context, room, lang string, c Cue) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	_, err = s.JS.Publish(ctx, CueSubject(room, lang), b)
	return err
}

// ReadCues returns the cues of channel lang (every channel of the room
// when lang is ""), in the order they were kept, each line once.
func (s *Store) ReadCues(ctx context.Context, room, lang string) ([]Cue, error) {
	filter := CueSubject(room, lang)
	if lang == "" {
		filter = cuePrefix + room + ".>"
	}
	var out []Cue
	idx := map[string]int{}
	err := s.each(ctx, filter, func(c Cue) bool {
		if i, ok := idx[c.Line]; ok && c.Line != "" {
			out[i] = c
			return true
		}
		idx[c.Line] = len(out)
		out = append(out, c)
		return true
	})
	return out, err
}

// each calls f with every cue kept on filter, oldest first, until f says
// stop. An ordered consumer reads them; it needs no cleanup.
func (s *Store) each(ctx context.Context, filter string, f func(Cue) bool) error {
	info, err := s.Cues.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return err
	}
	var kept uint64
	for _, n := range info.State.Subjects {
		kept += n
	}
	if kept == 0 {
		return nil
	}
	cons, err := s.Cues.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return err
	}
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			var c Cue
			if json.Unmarshal(m.Data(), &c) == nil && !f(c) {
				return nil
			}
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return err
		}
		if n == 0 {
			return nil // expired meanwhile
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// Zero is the start of room's record: the start of its first segment of
// audio or of its first cue, whichever is earlier; zero when nothing is
// kept.
func (s *Store) Zero(ctx context.Context, room string) (time.Time, error) {
	var zero time.Time
	err := s.each(ctx, cuePrefix+room+".>", func(c Cue) bool { zero = c.Start; return false })
	if err != nil {
		return zero, err
	}
	segs, err := s.Segments(ctx, room)
	if err != nil {
		return zero, err
	}
	for _, sg := range segs {
		if zero.IsZero() || sg.Start.Before(zero) {
			zero = sg.Start
		}
	}
	return zero, nil
}

// DeleteRoom removes every cue and segment of room.
func (s *Store) DeleteRoom(ctx context.Context, room string) error {
	err := s.Cues.Purge(ctx, jetstream.WithPurgeSubject(cuePrefix+room+".>"))
	segs, lerr := s.objects(ctx, room)
	err = errors.Join(err, lerr)
	for _, name := range segs {
		if derr := s.Recordings.Delete(ctx, name); derr != nil && !errors.Is(derr, jetstream.ErrObjectNotFound) {
			err = errors.Join(err, derr)
		}
	}
	return err
}

// objects lists the names of room's objects (segments and notes).
func (s *Store) objects(ctx context.Context, room string) ([]string, error) {
	infos, err := s.Recordings.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, in := range infos {
		if strings.HasPrefix(in.Name, room+"/") {
			out = append(out, in.Name)
		}
	}
	return out, nil
}

// Segment is a stretch of a channel's recording: 20 ms Opus packets,
// each with its 2-byte length before it (opus.AppendFramed), contiguous
// from Start.
type Segment struct {
	Room, Lang string
	Start      time.Time
	Packets    int
	Bytes      uint64
	name       string
}

// End is when the segment's last packet ends.
func (sg Segment) End() time.Time { return sg.Start.Add(time.Duration(sg.Packets) * PacketDuration) }

// PacketDuration is one Opus packet's audio.
const PacketDuration = 20 * time.Millisecond

// segmentName is room/lang/<start, Unix ns, 20 digits>-<packets>: sorted
// by name, a channel's segments are in time order.
func segmentName(room, lang string, start time.Time, packets int) string {
	return fmt.Sprintf("%s/%s/%020d-%d", room, lang, start.UnixNano(), packets)
}

func parseSegment(info *jetstream.ObjectInfo) (Segment, bool) {
	parts := strings.Split(info.Name, "/")
	if len(parts) != 3 {
		return Segment{}, false
	}
	at, n, ok := strings.Cut(parts[2], "-")
	ns, err1 := strconv.ParseInt(at, 10, 64)
	packets, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil {
		return Segment{}, false
	}
	return Segment{Room: parts[0], Lang: parts[1], Start: time.Unix(0, ns), Packets: packets, Bytes: info.Size, name: info.Name}, true
}

// PutSegment keeps a segment of channel lang of room: packets, framed,
// the first starting at start.
func (s *Store) PutSegment(ctx context.Context, room, lang string, start time.Time, packets int, framed []byte) error {
	_, err := s.Recordings.PutBytes(ctx, segmentName(room, lang, start, packets), framed)
	return err
}

// Segments lists room's segments, by channel and time.
func (s *Store) Segments(ctx context.Context, room string) ([]Segment, error) {
	all, err := s.allSegments(ctx)
	var out []Segment
	for _, sg := range all {
		if sg.Room == room {
			out = append(out, sg)
		}
	}
	return out, err
}

func (s *Store) allSegments(ctx context.Context) ([]Segment, error) {
	infos, err := s.Recordings.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Segment
	for _, in := range infos {
		if sg, ok := parseSegment(in); ok {
			out = append(out, sg)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Room != out[j].Room {
			return out[i].Room < out[j].Room
		}
		if out[i].Lang != out[j].Lang {
			return out[i].Lang < out[j].Lang
		}
		return out[i].Start.Before(out[j].Start)
	})
	return out, nil
}
