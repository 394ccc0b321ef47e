package audio

import "testing"

// TestMeter: a level measured in pieces is the level of the whole, Take
// empties the meter, and an empty meter says so.
func TestMeter(t *testing.T) {
	t.Parallel()
	s := tone(1000, 24000, 1, 3277)
	wantRMS, wantPeak := Level(s)
	var m Meter
	if _, _, ok := m.Take(); ok {
		t.Error("an empty meter measured something")
	}
	for i := 0; i < len(s); i += 480 {
		m.Add(s[i:min(i+480, len(s))])
	}
	if rms, peak, ok := m.Take(); !ok || rms != wantRMS || peak != wantPeak {
		t.Errorf("in pieces: %v %v %v, want %v %v", rms, peak, ok, wantRMS, wantPeak)
	}
	if rms, peak, ok := m.Take(); ok || rms != SilenceDB || peak != SilenceDB {
		t.Errorf("after Take: %v %v %v", rms, peak, ok)
	}
	m.Add(make([]int16, 10))
	if rms, peak, ok := m.Take(); !ok || rms != SilenceDB || peak != SilenceDB {
		t.Errorf("silence: %v %v %v", rms, peak, ok)
	}
}
