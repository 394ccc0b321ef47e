package opus

import (
	"bytes"
	"errors"
	"io"
	"math"
	"testing"

	"gopkg.in/hraban/opus.v2"

	"github.com/babelcast/babelcast/internal/audio"
)

// sine is n samples of a 440 Hz tone at a third of full scale.
func sine(n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(10000 * math.Sin(2*math.Pi*440*float64(i)/audio.Rate))
	}
	return s
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(1, len(s))))
}

func encodeAll(t *testing.T, pcm []int16) [][]byte {
	t.Helper()
	enc, err := NewEncoder(0)
	if err != nil {
		t.Fatal(err)
	}
	var packets [][]byte
	for i := 0; i+FrameSamples <= len(pcm); i += FrameSamples {
		p, err := enc.Encode(nil, pcm[i:i+FrameSamples])
		if err != nil {
			t.Fatal(err)
		}
		packets = append(packets, p)
	}
	return packets
}

func TestEncodeDecodeKeepsDurationAndEnergy(t *testing.T) {
	in := sine(audio.Rate) // 1 s
	packets := encodeAll(t, in)
	if len(packets) != 50 {
		t.Fatalf("%d packets for 1 s, want 50", len(packets))
	}
	bytes := 0
	for _, p := range packets {
		bytes += len(p)
	}
	if kbps := float64(bytes*8) / 1000; kbps > 36 {
		t.Errorf("%.1f kbit/s at the default bitrate, want about 32", kbps)
	}
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	for _, p := range packets {
		if out, err = dec.Decode(out, p); err != nil {
			t.Fatal(err)
		}
	}
	if len(out) != len(in) {
		t.Fatalf("decoded %d samples, want %d", len(out), len(in))
	}
	// Skip the codec's look-ahead at the start; the tone's level survives.
	if a, b := rms(in[2400:]), rms(out[2400:]); math.Abs(a-b)/a > 0.1 {
		t.Fatalf("RMS %.0f after the codec, %.0f before", b, a)
	}
}

func TestEncodeRefusesPartialFrames(t *testing.T) {
	enc, _ := NewEncoder(0)
	if _, err := enc.Encode(nil, make([]int16, 100)); err == nil {
		t.Fatal("encoded 100 samples as a packet")
	}
}

func TestDecodeRefusesGarbage(t *testing.T) {
	dec, _ := NewDecoder()
	for _, bad := range [][]byte{nil, make([]byte, MaxPacket+1), {0xff, 0xff, 0xff}} {
		if _, err := dec.Decode(nil, bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode %d bytes: err %v, want ErrCorrupt", len(bad), err)
		}
	}
}

func TestFraming(t *testing.T) {
	var msg []byte
	msg = AppendFramed(msg, []byte{1, 2, 3})
	msg = AppendFramed(msg, []byte{4})
	got, err := SplitFramed(msg)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], []byte{1, 2, 3}) || !bytes.Equal(got[1], []byte{4}) {
		t.Fatalf("split %v, %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"empty":         {},
		"stray byte":    append(AppendFramed(nil, []byte{1}), 0),
		"short packet":  {0, 5, 1, 2},
		"empty packet":  {0, 0},
		"length beyond": {0xff, 0xff, 1},
	} {
		if _, err := SplitFramed(bad); !errors.Is(err, ErrFraming) {
			t.Errorf("%s: err %v, want ErrFraming", name, err)
		}
	}
}

func TestOggRoundTripAndRealDecoder(t *testing.T) {
	in := sine(3 * audio.Rate)
	packets := encodeAll(t, in)
	var file bytes.Buffer
	w, err := NewWriter(&file, 7, "es")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(packets); i += 5 { // 100 ms pages, as fan-out sends
		if err := w.WritePackets(packets[i:min(i+5, len(packets))]...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// Our reader gives the packets back, CRCs checked.
	r := NewReader(bytes.NewReader(file.Bytes()))
	for i := range packets {
		p, _, err := r.ReadPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(p, packets[i]) {
			t.Fatalf("packet %d differs", i)
		}
	}
	if _, _, err := r.ReadPacket(); err != io.EOF {
		t.Fatalf("after the last packet: %v, want EOF", err)
	}

	// libopusfile, a decoder we did not write, plays the file: 3 s at 48 kHz.
	st, err := opus.NewStream(bytes.NewReader(file.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	total := 0
	buf := make([]int16, 5760)
	for {
		n, err := st.Read(buf)
		total += n
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := 3 * ClockRate; total < want-PreSkip-960 || total > want {
		t.Fatalf("libopusfile decoded %d samples, want about %d", total, want)
	}

	// A flipped byte is caught by the CRC.
	bad := bytes.Clone(file.Bytes())
	bad[len(bad)/2] ^= 0x40
	r = NewReader(bytes.NewReader(bad))
	var rerr error
	for rerr == nil {
		_, _, rerr = r.ReadPacket()
	}
	if rerr == io.EOF {
		t.Fatal("a corrupted page was read without error")
	}
}
