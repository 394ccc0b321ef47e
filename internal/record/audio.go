package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/audio/opus"
)

// Recording is one channel's recording as the API lists it.
type Recording struct {
	Lang  string    `json:"lang"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Bytes is what the channel's segments take in the store.
	Bytes uint64 `json:"bytes"`
}

// Recordings sums room's segments by channel, in language order.
func Recordings(segs []Segment) []Recording {
	by := map[string]*Recording{}
	for _, sg := range segs {
		r := by[sg.Lang]
		if r == nil {
			r = &Recording{Lang: sg.Lang, Start: sg.Start, End: sg.End()}
			by[sg.Lang] = r
		}
		if sg.Start.Before(r.Start) {
			r.Start = sg.Start
		}
		if sg.End().After(r.End) {
			r.End = sg.End()
		}
		r.Bytes += sg.Bytes
	}
	out := make([]Recording, 0, len(by))
	for _, r := range by {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Lang < out[j].Lang })
	return out
}

// WriteOgg writes channel lang's whole recording as one Ogg/Opus stream,
// starting at zero: silence fills the time before its first segment and
// between segments (a pause in the recording, a failover), and a segment
// that overlaps the one before it (two recorders for a moment) loses its
// overlap. It returns false, writing nothing, when the channel has no
// recording.
func (s *Store) WriteOgg(ctx context.Context, w io.Writer, room, lang string, zero time.Time) (bool, error) {
	all, err := s.Segments(ctx, room)
	if err != nil {
		return false, err
	}
	var segs []Segment
	for _, sg := range all {
		if sg.Lang == lang {
			segs = append(segs, sg)
		}
	}
	if len(segs) == 0 {
		return false, nil
	}
	if zero.IsZero() || segs[0].Start.Before(zero) {
		zero = segs[0].Start
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(room + "/" + lang))
	ow, err := opus.NewWriter(w, h.Sum32(), room+" ("+lang+")")
	if err != nil {
		return true, err
	}
	silence, err := silencePacket()
	if err != nil {
		return true, err
	}
	var pos int64 // packets written
	batch := make([][]byte, 0, 50)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := ow.WritePackets(batch...)
		batch = batch[:0]
		return err
	}
	add := func(p []byte) error {
		batch = append(batch, p)
		pos++
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	}
	for _, sg := range segs {
		at := int64((sg.Start.Sub(zero) + PacketDuration/2) / PacketDuration)
		for pos < at {
			if err := add(silence); err != nil {
				return true, err
			}
		}
		data, err := s.segmentBytes(ctx, sg.Name)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			continue // pruned or expired meanwhile
		}
		if err != nil {
			return true, err
		}
		packets, err := opus.SplitFramed(data)
		if err != nil {
			s.logger().Warn("a recording segment is corrupt; skipped", "segment", sg.Name, "err", err)
			continue
		}
		for i, p := range packets {
			if at+int64(i) < pos {
				continue // overlaps what is written
			}
			if err := add(p); err != nil {
				return true, err
			}
		}
	}
	if err := flush(); err != nil {
		return true, err
	}
	return true, ow.Close()
}

// segmentRead bounds the read of one segment: a download streams as long
// as it takes, but a store that stops answering ends it rather than
// holding the request forever.
const segmentRead = 15 * time.Second

func (s *Store) segmentBytes(ctx context.Context, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, segmentRead)
	defer cancel()
	return s.Recordings.GetBytes(ctx, name)
}

// silencePacket is a 20 ms Opus packet of silence.
func silencePacket() ([]byte, error) {
	enc, err := opus.NewEncoder(0)
	if err != nil {
		return nil, err
	}
	zeros := make([]int16, opus.FrameSamples)
	var p []byte
	for range 3 { // past the encoder's start-up
		if p, err = enc.Encode(nil, zeros); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Pruned says that a room's audio was removed to keep the store under
// its bound (--record-max-bytes).
type Pruned struct {
	At    time.Time `json:"at"`
	Bytes uint64    `json:"bytes"`
}

func prunedName(room string) string { return room + "/pruned" }

// PrunedOf is the note left when room's audio was pruned, nil if never.
func (s *Store) PrunedOf(ctx context.Context, room string) (*Pruned, error) {
	b, err := s.Recordings.GetBytes(ctx, prunedName(room))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Pruned
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Prune keeps the audio under maxBytes (0: no bound): while the segments
// take more, the room whose audio began first loses its audio (its
// transcripts stay), and a note says so (PrunedOf). keep is a room being
// recorded: it loses only its oldest segments, and only when it is the
// last room left. Prune reports what it removed.
func (s *Store) Prune(ctx context.Context, maxBytes uint64, keep string) (map[string]uint64, error) {
	if maxBytes == 0 {
		return nil, nil
	}
	st, err := s.Recordings.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.Size() <= maxBytes {
		return nil, nil // the store's bytes (with its metadata) bound the audio's
	}
	segs, err := s.allSegments(ctx)
	if err != nil {
		return nil, err
	}
	var total uint64
	first := map[string]time.Time{}
	for _, sg := range segs {
		total += sg.Bytes
		if f, ok := first[sg.Room]; !ok || sg.Start.Before(f) {
			first[sg.Room] = sg.Start
		}
	}
	sort.SliceStable(segs, func(i, j int) bool {
		ki, kj := segs[i].Room == keep, segs[j].Room == keep
		if ki != kj {
			return kj // the room being recorded last
		}
		if fi, fj := first[segs[i].Room], first[segs[j].Room]; !fi.Equal(fj) {
			return fi.Before(fj)
		}
		return segs[i].Start.Before(segs[j].Start)
	})
	if total <= maxBytes {
		return nil, nil
	}
	removed := map[string]uint64{}
	target := maxBytes * 9 / 10 // some room, so pruning is not every segment
	for _, sg := range segs {
		if total <= target {
			break
		}
		if err := s.Recordings.Delete(ctx, sg.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return removed, fmt.Errorf("prune %s: %w", sg.Name, err)
		}
		if err := s.Cues.DeleteMsg(ctx, sg.seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return removed, fmt.Errorf("prune %s from the index: %w", sg.Name, err)
		}
		total -= sg.Bytes
		removed[sg.Room] += sg.Bytes
	}
	for room, n := range removed {
		p := Pruned{At: time.Now().UTC(), Bytes: n}
		if old, err := s.PrunedOf(ctx, room); err == nil && old != nil {
			p.Bytes += old.Bytes
		}
		b, _ := json.Marshal(p)
		if _, err := s.Recordings.PutBytes(ctx, prunedName(room), b); err != nil {
			return removed, err
		}
	}
	return removed, nil
}
