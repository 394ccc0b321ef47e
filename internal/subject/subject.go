// Package subject names the NATS subjects, headers and KV buckets through which
// babelcast's roles (api, ingest, translate, fanout) meet. No role talks to
// another directly: everything one role needs from another goes through here,
// or through the live-state bucket that package livestate owns.
package subject

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/babelcast/babelcast/internal/audio"
)

const prefix = "babelcast."

// Mic is the subject of one mic's audio in a room: PCM16LE mono 24 kHz in
// messages of about 100 ms, built by FrameMsg (what language it speaks,
// who, whether the frame holds speech). A room may have several mics live
// at once; whoever needs the floor mixes them (audio.Mixer).
func Mic(room, mic string) string { return prefix + room + ".src." + mic }

// Mics matches Mic for every mic of a room.
func Mics(room string) string { return prefix + room + ".src.*" }

// MicOf is the mic id of a subject built by Mic.
func MicOf(subj string) string { return subj[strings.LastIndexByte(subj, '.')+1:] }

// Out is the subject of a channel's interpretation: PCM16LE mono 24 kHz,
// built by FrameMsg (the language and speaker interpreted, and whose voice
// it is: the AI's or a human interpreter's).
func Out(room, lang string) string { return prefix + room + ".out." + lang }

// Caption is the subject of a channel's captions in its own language, JSON
// captions (internal/wire.Caption) exactly as listeners receive them.
func Caption(room, lang string) string { return prefix + room + ".cap." + lang }

// SourceCaption is the subject on which the translator of channel lang
// publishes what it heard said (input transcription), each line in the
// language it was spoken in (CaptionMsg.SourceLanguage). Channels that
// carry that speech in the original pick one translator's lines from these.
func SourceCaption(room, lang string) string { return prefix + room + ".srccap." + lang }

// SourceCaptions matches SourceCaption for every channel of a room.
func SourceCaptions(room string) string { return prefix + room + ".srccap.*" }

// Booth is the subject of the audio of interpreter conn in the booth of
// channel lang, built by FrameMsg (Voice "human", Speech per frame),
// published only while that interpreter is on air and not muted. An empty
// message says nobody is on air any more (hand-over, mute, hang-up).
func Booth(room, lang, conn string) string { return prefix + room + ".booth." + lang + "." + conn }

// Booths matches Booth for every interpreter of a channel's booth.
func Booths(room, lang string) string { return prefix + room + ".booth." + lang + ".*" }

// RoomBooths matches Booth for every booth of a room.
func RoomBooths(room string) string { return prefix + room + ".booth.*.*" }

// BoothLang is the language of a subject built by Booth.
func BoothLang(subj string) string {
	rest := subj[:strings.LastIndexByte(subj, '.')]
	return rest[strings.LastIndexByte(rest, '.')+1:]
}

// TranslatorAlive is the subject a running translator node answers
// requests on. A node waiting for a channel asks the lease holder: when
// NATS says no one is subscribed, the holder's process (and its
// connection) is gone and the lease can be freed without waiting out its
// TTL. Room ids cannot start with "_", so this never meets a room's
// subjects.
func TranslatorAlive(node string) string { return prefix + "_translator." + node + ".alive" }

// Headers carried by audio messages: so lag can be measured end to end,
// and so every consumer knows who speaks what without asking anyone.
const (
	// HeaderSeq is a per-publisher sequence number, starting at 1.
	HeaderSeq = "Babelcast-Seq"
	// HeaderCapture is when the speaker audio (that this message is, or is
	// the translation of) was captured, in Unix nanoseconds.
	HeaderCapture = "Babelcast-Capture"
	// HeaderLang is the language spoken (the language interpreted, on an
	// interpretation).
	HeaderLang = "Babelcast-Lang"
	// HeaderSpeaker is who speaks, URL-escaped.
	HeaderSpeaker = "Babelcast-Speaker"
	// HeaderSpeech is "0" on a mic's frame that holds no speech (silence,
	// room noise); absent means speech.
	HeaderSpeech = "Babelcast-Speech"
	// HeaderVoice says whose voice an interpretation is: "ai" or "human".
	HeaderVoice = "Babelcast-Voice"
	// HeaderSilent, on a booth's frame, is how long (ms) the interpreter
	// on air has been silent; absent until their first word on air. A
	// consumer that starts listening mid-talk knows what came before.
	HeaderSilent = "Babelcast-Silent-Ms"
)

// SilentFor reads HeaderSilent: how long before m the interpreter last
// spoke, and whether they have spoken on air at all.
func SilentFor(m *nats.Msg) (time.Duration, bool) {
	if m.Header == nil {
		return 0, false
	}
	ms, err := strconv.ParseInt(m.Header.Get(HeaderSilent), 10, 64)
	if err != nil || ms < 0 {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// FrameMsg builds an audio message on subj from f, with sequence number
// seq; f's capture time and who/what go in headers (the mic is the
// subject's, see Mic).
func FrameMsg(subj string, f audio.Frame, seq uint64) *nats.Msg {
	m := AudioMsg(subj, f.PCM, seq, f.Captured)
	if f.Captured.IsZero() {
		m.Header.Del(HeaderCapture) // unknown: say nothing rather than a bogus time
	}
	if f.Lang != "" {
		m.Header.Set(HeaderLang, f.Lang)
	}
	if f.Speaker != "" {
		m.Header.Set(HeaderSpeaker, url.QueryEscape(f.Speaker))
	}
	if !f.Speech {
		m.Header.Set(HeaderSpeech, "0")
	}
	if f.Voice != "" {
		m.Header.Set(HeaderVoice, f.Voice)
	}
	return m
}

// FrameOf reads a message built by FrameMsg: the frame (sharing m's data)
// and its sequence number. Mic is set from the subject when it is a Mic
// subject. Missing headers give zero values, but speech when unsaid.
func FrameOf(m *nats.Msg) (audio.Frame, uint64) {
	seq, captured := AudioMeta(m)
	f := audio.Frame{PCM: m.Data, Captured: captured, Speech: true}
	if strings.Contains(m.Subject, ".src.") || strings.Contains(m.Subject, ".booth.") {
		f.Mic = MicOf(m.Subject) // a booth's: the interpreter's connection
	}
	if m.Header == nil {
		return f, seq
	}
	f.Lang = m.Header.Get(HeaderLang)
	if sp := m.Header.Get(HeaderSpeaker); sp != "" {
		if name, err := url.QueryUnescape(sp); err == nil {
			f.Speaker = name
		}
	}
	f.Speech = m.Header.Get(HeaderSpeech) != "0"
	f.Voice = m.Header.Get(HeaderVoice)
	return f, seq
}

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

// RecordLeaseKey is the key in BucketLeases of the fan-out node that keeps
// a room's record (transcripts, recordings). No language is "_record".
func RecordLeaseKey(room string) string { return room + "._record" }
