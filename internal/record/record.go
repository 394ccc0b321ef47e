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
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of the stores (internal/bus opens them with the others).
const (
	// Stream keeps cues (one message a final caption line, on
	// CueSubject) and the index of audio segments (one message a segment,
	// on segSubject): a room's record is read by subject, never by
	// listing every object of the bucket.
	Stream = "babelcast_transcript"
	// Bucket keeps audio segments, named by segmentName.
	Bucket = "babelcast_recordings"
	// DefaultRetention bounds how long the record is kept.
	DefaultRetention = 30 * 24 * time.Hour
)

const prefix = "babelcast_transcript."

// StreamConfig is the record stream's configuration (replicas and MaxAge
// are set where it is opened).
func StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: Stream, Description: "babelcast transcripts (final captions of every channel) and the index of recordings",
		Subjects: []string{prefix + ">"}, Storage: jetstream.FileStorage,
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
func CueSubject(room, lang string) string { return prefix + room + ".cue." + lang }

// segSubject is where a channel's segments are indexed.
func segSubject(room, lang string) string { return prefix + room + ".seg." + lang }

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
		filter = CueSubject(room, "*")
	}
	var out []Cue
	idx := map[string]int{}
	err := s.each(ctx, filter, func(data []byte, _ uint64) bool {
		var c Cue
		if json.Unmarshal(data, &c) != nil {
			return true
		}
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

// kept is how many messages are kept on filter, by subject.
func (s *Store) kept(ctx context.Context, filter string) (map[string]uint64, error) {
	info, err := s.Cues.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, err
	}
	return info.State.Subjects, nil
}

// each calls f with every message kept on filter (and its sequence),
// oldest first, until f says stop. An ordered consumer reads them; it
// needs no cleanup.
func (s *Store) each(ctx context.Context, filter string, f func(data []byte, seq uint64) bool) error {
	subjects, err := s.kept(ctx, filter)
	if err != nil {
		return err
	}
	if len(subjects) == 0 {
		return nil
	}
	cons, err := s.Cues.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A batch waits at most 2 s for messages, or what is left of ctx.
		wait := jetstream.FetchMaxWait(2 * time.Second)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < 2*time.Second {
			wait = jetstream.FetchContext(ctx)
		}
		batch, err := cons.Fetch(500, wait)
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if !f(m.Data(), md.Sequence.Stream) || md.NumPending == 0 {
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

// Zero is the start of room's record: the earliest start of its cues and
// segments; zero when nothing is kept. It reads the first message of each
// of the room's subjects (cues and segments are kept in time order per
// channel).
func (s *Store) Zero(ctx context.Context, room string) (time.Time, error) {
	var zero time.Time
	subjects, err := s.kept(ctx, prefix+room+".>")
	if err != nil {
		return zero, err
	}
	for subj := range subjects {
		m, err := s.Cues.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // expired meanwhile
		}
		if err != nil {
			return zero, err
		}
		var first struct{ Start time.Time }
		if json.Unmarshal(m.Data, &first) != nil || first.Start.IsZero() {
			continue
		}
		if zero.IsZero() || first.Start.Before(zero) {
			zero = first.Start
		}
	}
	return zero, nil
}

// DeleteRoom removes every cue and segment of room.
func (s *Store) DeleteRoom(ctx context.Context, room string) error {
	segs, err := s.Segments(ctx, room)
	for _, sg := range segs {
		if derr := s.Recordings.Delete(ctx, sg.Name); derr != nil && !errors.Is(derr, jetstream.ErrObjectNotFound) {
			err = errors.Join(err, derr)
		}
	}
	if derr := s.Recordings.Delete(ctx, prunedName(room)); derr != nil && !errors.Is(derr, jetstream.ErrObjectNotFound) {
		err = errors.Join(err, derr)
	}
	return errors.Join(err, s.Cues.Purge(ctx, jetstream.WithPurgeSubject(prefix+room+".>")))
}

// Segment is a stretch of a channel's recording: 20 ms Opus packets,
// each with its 2-byte length before it (opus.AppendFramed), contiguous
// from Start, kept in the object Name.
type Segment struct {
	Room    string    `json:"room"`
	Lang    string    `json:"lang"`
	Start   time.Time `json:"start"`
	Packets int       `json:"packets"`
	Bytes   uint64    `json:"bytes"`
	Name    string    `json:"name"`
	seq     uint64    // of its index entry
}

// End is when the segment's last packet ends.
func (sg Segment) End() time.Time { return sg.Start.Add(time.Duration(sg.Packets) * PacketDuration) }

// PacketDuration is one Opus packet's audio.
const PacketDuration = 20 * time.Millisecond

// segmentName is room/lang/<start, Unix ns>.
func segmentName(room, lang string, start time.Time) string {
	return fmt.Sprintf("%s/%s/%020d", room, lang, start.UnixNano())
}

// PutSegment keeps a segment of channel lang of room: packets, framed,
// the first starting at start; then indexes it.
func (s *Store) PutSegment(ctx context.Context, room, lang string, start time.Time, packets int, framed []byte) error {
	sg := Segment{Room: room, Lang: lang, Start: start, Packets: packets, Bytes: uint64(len(framed)), Name: segmentName(room, lang, start)}
	if _, err := s.Recordings.PutBytes(ctx, sg.Name, framed); err != nil {
		return err
	}
	b, err := json.Marshal(sg)
	if err != nil {
		return err
	}
	_, err = s.JS.Publish(ctx, segSubject(room, lang), b)
	return err
}

// Segments lists room's segments, by channel and time.
func (s *Store) Segments(ctx context.Context, room string) ([]Segment, error) {
	return s.segments(ctx, segSubject(room, "*"))
}

// allSegments lists every room's segments.
func (s *Store) allSegments(ctx context.Context) ([]Segment, error) {
	return s.segments(ctx, prefix+"*.seg.*")
}

func (s *Store) segments(ctx context.Context, filter string) ([]Segment, error) {
	var out []Segment
	err := s.each(ctx, filter, func(data []byte, seq uint64) bool {
		var sg Segment
		if json.Unmarshal(data, &sg) == nil && sg.Name != "" {
			sg.seq = seq
			out = append(out, sg)
		}
		return true
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Room != out[j].Room {
			return out[i].Room < out[j].Room
		}
		if out[i].Lang != out[j].Lang {
			return out[i].Lang < out[j].Lang
		}
		return out[i].Start.Before(out[j].Start)
	})
	return out, err
}
