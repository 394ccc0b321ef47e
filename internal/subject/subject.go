// Package subject names the NATS subjects, headers and KV buckets through which
// babelcast's roles (api, ingest, translate, fanout) meet. No role talks to
// another directly: everything one role needs from another goes through here,
// or through the live-state bucket that package livestate owns.
package subject

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

const prefix = "babelcast."

// Source is the subject of a room's speaker audio: PCM16LE mono 24 kHz.
func Source(room string) string { return prefix + room + ".src" }

// Out is the subject of a channel's translated audio: PCM16LE mono 24 kHz.
func Out(room, lang string) string { return prefix + room + ".out." + lang }

// Caption is the subject of a channel's captions in its own language, JSON
// captions (internal/wire.Caption) exactly as listeners receive them.
func Caption(room, lang string) string { return prefix + room + ".cap." + lang }

// SourceCaption is the subject on which the translator of channel lang
// publishes what it heard the speaker say (input transcription), in the
// room's source language. The fan-out of the floor channel picks one of them.
func SourceCaption(room, lang string) string { return prefix + room + ".srccap." + lang }

// SourceCaptions matches SourceCaption for every channel of a room.
func SourceCaptions(room string) string { return prefix + room + ".srccap.*" }

// TranslatorAlive is the subject a running translator node answers
// requests on. A node waiting for a channel asks the lease holder: when
// NATS says no one is subscribed, the holder's process (and its
// connection) is gone and the lease can be freed without waiting out its
// TTL. Room ids cannot start with "_", so this never meets a room's
// subjects.
func TranslatorAlive(node string) string { return prefix + "_translator." + node + ".alive" }

// Headers carried by audio messages so lag can be measured end to end.
const (
	// HeaderSeq is a per-publisher sequence number, starting at 1.
	HeaderSeq = "Babelcast-Seq"
	// HeaderCapture is when the speaker audio (that this message is, or is
	// the translation of) was captured, in Unix nanoseconds.
	HeaderCapture = "Babelcast-Capture"
)

// AudioMsg builds an audio message with sequence and capture-time headers.
func AudioMsg(subj string, pcm []byte, seq uint64, captured time.Time) *nats.Msg {
	m := nats.NewMsg(subj)
	m.Data = pcm
	m.Header.Set(HeaderSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(HeaderCapture, strconv.FormatInt(captured.UnixNano(), 10))
	return m
}

// AudioMeta reads the headers set by AudioMsg. Missing or malformed headers
// give zero values.
func AudioMeta(m *nats.Msg) (seq uint64, captured time.Time) {
	if m.Header == nil {
		return 0, time.Time{}
	}
	seq, _ = strconv.ParseUint(m.Header.Get(HeaderSeq), 10, 64)
	if ns, err := strconv.ParseInt(m.Header.Get(HeaderCapture), 10, 64); err == nil && ns > 0 {
		captured = time.Unix(0, ns)
	}
	return seq, captured
}

// KV buckets shared by the roles (the live-state bucket is
// livestate.Bucket).
const (
	// BucketRooms holds room configuration, key = room id, value = JSON room.
	BucketRooms = "babelcast_rooms"
	// BucketLeases holds channel ownership leases: key = LeaseKey(room,
	// lang), value = owner node id. Short TTL; the owner renews it.
	BucketLeases = "babelcast_leases"
)

// LeaseTTL is how long a lease lives without renewal: the failover time.
const LeaseTTL = 4 * time.Second

// LeaseKey is a channel's key in BucketLeases.
func LeaseKey(room, lang string) string { return room + "." + lang }
