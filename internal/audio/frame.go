package audio

import "time"

// Frame is a stretch of babelcast audio as it travels between the roles:
// PCM16LE mono at Rate, and when the speech in it was captured.
type Frame struct {
	PCM []byte
	// Captured is when the speaker's audio (that this frame is, or is the
	// interpretation of) was captured; zero when unknown.
	Captured time.Time

	// Who and what, where known. Mic is the mic the audio came from (a
	// room may have several live at once); Lang the language spoken in it
	// (BCP-47); Speaker the name the mic gave; Speech reports that the frame
	// holds speech rather than silence or room noise.
	Mic, Lang, Speaker string
	Speech             bool
	// Voice, on an interpretation, says whose it is: "ai" or "human".
	Voice string
}

// Duration is how long f plays.
func (f Frame) Duration() time.Duration { return BytesDuration(len(f.PCM)) }

// BytesPerSecond of PCM16LE mono at Rate.
const BytesPerSecond = 2 * Rate

// BytesDuration is how long n bytes of PCM16LE mono at Rate play.
func BytesDuration(n int) time.Duration {
	return time.Duration(n) * time.Second / BytesPerSecond
}

// DurationBytes is how many bytes of PCM16LE mono at Rate play for d,
// rounded down to whole samples.
func DurationBytes(d time.Duration) int {
	return int(int64(d)*Rate/int64(time.Second)) * 2
}
