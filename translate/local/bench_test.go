package local

import (
	"testing"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
)

// BenchmarkTurnLatency measures a 5.3-second turn of real speech (LibriVox
// "unless to be rather cold hearted…") interpreted into Spanish:
//
//   - end-ms: from the detector closing the turn to the first translated
//     audio (recognizer tail + Apertium + espeak-ng's first 200 ms);
//   - speech-end-ms: from the speaker's last word to the first translated
//     audio, i.e. end-ms plus the detector's hangover: what a listener waits;
//   - rtf: the real-time factor of the whole pipeline, the same turn fed as
//     fast as possible: (first sample in → last translated audio out) / 5.3 s.
//
// Speech is paced in real time for the latency, so each iteration takes
// about 7 s: run with -benchtime=5x.
func BenchmarkTurnLatency(b *testing.B) {
	cs := libriVox(b)
	turn := cs[2]
	turnLen := time.Duration(len(turn.pcm)) * time.Second / time.Duration(turn.rate)
	reports := make(chan TurnReport, 16)
	e, _ := testEngine(b, Options{OnTurn: func(r TurnReport) { reports <- r }})
	s, _ := openSpanish(b, e)
	wait := func() TurnReport {
		select {
		case r := <-reports:
			if r.Err != nil || r.FirstAudio.IsZero() {
				b.Fatalf("turn %d not interpreted: %v", r.Turn, r.Err)
			}
			return r
		case <-time.After(time.Minute):
			b.Fatal("no turn interpreted within a minute")
		}
		return TurnReport{}
	}
	sp := newSpeaker(s)
	// The session's first turn is decoded twice (see recognizer): not
	// what is measured here.
	sp.quiet(b, 300*time.Millisecond, false)
	sp.say(b, cs[1], false)
	sp.quiet(b, time.Second, false)
	wait()

	var endSum, speechEndSum, rtfSum time.Duration
	var rtf float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sp.quiet(b, 500*time.Millisecond, true)
		sp.say(b, turn, true)
		spoke := time.Now()
		sp.quiet(b, time.Second, true)
		r := wait()
		endSum += r.FirstAudio.Sub(r.Ended)
		speechEndSum += r.FirstAudio.Sub(spoke)
		b.Logf("paced: turn of %v (%v speech): recognized %v, translated %v, first audio %v after the turn ended (%v after the speech ended)",
			r.Length.Round(10*time.Millisecond), r.Speech, r.Recognized.Sub(r.Ended).Round(time.Millisecond),
			r.Translated.Sub(r.Ended).Round(time.Millisecond), r.FirstAudio.Sub(r.Ended).Round(time.Millisecond),
			r.FirstAudio.Sub(spoke).Round(time.Millisecond))

		start := time.Now()
		sp.say(b, turn, false)
		sp.send(b, make([]int16, audio.Rate), false) // digital silence ends the turn
		r = wait()
		rtfSum += r.Done.Sub(start)
		rtf = rtfSum.Seconds() / float64(i+1) / turnLen.Seconds()
		b.Logf("unpaced: in → last audio out %v for %v of speech", r.Done.Sub(start).Round(time.Millisecond), turnLen.Round(10*time.Millisecond))
	}
	b.ReportMetric(float64((endSum / time.Duration(b.N)).Milliseconds()), "end-ms")
	b.ReportMetric(float64((speechEndSum / time.Duration(b.N)).Milliseconds()), "speech-end-ms")
	b.ReportMetric(rtf, "rtf")
	b.ReportMetric(0, "ns/op")
}
