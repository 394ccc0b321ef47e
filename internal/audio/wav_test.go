package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wavFile builds a WAV with the given fmt fields and raw data, optionally
// with extra chunks before fmt and data.
func wavFile(tag uint16, channels, rate, bits int, data []byte, extra bool, dataSize uint32) []byte {
	le := binary.LittleEndian
	var b []byte
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, 0) // RIFF size: readers must not depend on it
	b = append(b, "WAVE"...)
	if extra {
		b = append(b, "LIST"...)
		b = le.AppendUint32(b, 5)
		b = append(b, "INFOx"...)
		b = append(b, 0) // pad byte of the odd-sized chunk
	}
	b = append(b, "fmt "...)
	if tag == 0xFFFE {
		b = le.AppendUint32(b, 40)
	} else {
		b = le.AppendUint32(b, 16)
	}
	b = le.AppendUint16(b, tag)
	b = le.AppendUint16(b, uint16(channels))
	b = le.AppendUint32(b, uint32(rate))
	b = le.AppendUint32(b, uint32(rate*channels*bits/8))
	b = le.AppendUint16(b, uint16(channels*bits/8))
	b = le.AppendUint16(b, uint16(bits))
	if tag == 0xFFFE {
		b = le.AppendUint16(b, 22)
		b = le.AppendUint16(b, uint16(bits))
		b = le.AppendUint32(b, 3) // channel mask
		b = le.AppendUint16(b, 1) // sub-format: PCM
		b = append(b, make([]byte, 14)...)
	}
	if extra {
		b = append(b, "fact"...)
		b = le.AppendUint32(b, 4)
		b = le.AppendUint32(b, 0)
	}
	b = append(b, "data"...)
	if dataSize == 1 {
		dataSize = uint32(len(data))
	}
	b = le.AppendUint32(b, dataSize)
	b = append(b, data...)
	if extra {
		b = append(b, "LIST"...) // trailing chunk after data must not be read as audio
		b = le.AppendUint32(b, 4)
		b = append(b, "abcd"...)
	}
	return b
}

func readAllWAV(t *testing.T, b []byte) (WAVFormat, []int16) {
	t.Helper()
	r, err := NewWAVReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []int16
	buf := make([]int16, 7*r.Format.Channels) // small, to cross frame boundaries
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if errors.Is(err, io.EOF) {
			return r.Format, out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestWAVReaderFormats(t *testing.T) {
	want := []int16{0, 16384, -16384, 32767, -32768, 256}
	le := binary.LittleEndian
	enc := map[string]func() []byte{
		"pcm8": func() []byte {
			var d []byte
			for _, v := range want {
				d = append(d, byte(int(v>>8)+128))
			}
			return d
		},
		"pcm16": func() []byte { return Bytes(want) },
		"pcm24": func() []byte {
			var d []byte
			for _, v := range want {
				x := int32(v) << 8
				d = append(d, byte(x), byte(x>>8), byte(x>>16))
			}
			return d
		},
		"pcm32": func() []byte {
			var d []byte
			for _, v := range want {
				d = le.AppendUint32(d, uint32(int32(v)<<16))
			}
			return d
		},
		"float32": func() []byte {
			var d []byte
			for _, v := range want {
				d = le.AppendUint32(d, math.Float32bits(float32(v)/32768))
			}
			return d
		},
	}
	cases := []struct {
		name string
		tag  uint16
		bits int
	}{{"pcm8", 1, 8}, {"pcm16", 1, 16}, {"pcm24", 1, 24}, {"pcm32", 1, 32}, {"float32", 3, 32}, {"pcm16", 0xFFFE, 16}}
	for _, c := range cases {
		f, got := readAllWAV(t, wavFile(c.tag, 1, 44100, c.bits, enc[c.name](), true, 1))
		if f.SampleRate != 44100 || f.Channels != 1 || f.Bits != c.bits {
			t.Errorf("%s: format %v", c.name, f)
		}
		tol := int16(0)
		if c.bits == 8 {
			tol = 255
		}
		if len(got) != len(want) {
			t.Fatalf("%s/%#x: got %v, want %v", c.name, c.tag, got, want)
		}
		for i := range want {
			if d := got[i] - want[i]; d > tol || d < -tol {
				t.Errorf("%s/%#x: sample %d = %d, want %d", c.name, c.tag, i, got[i], want[i])
			}
		}
	}
}

func TestWAVReaderStreamSizeAndErrors(t *testing.T) {
	// Endless stream: size 0xFFFFFFFF, read until EOF, cut mid-frame.
	data := append(Bytes([]int16{1, 2, 3, 4}), 9)
	f, got := readAllWAV(t, wavFile(1, 2, 8000, 16, data, false, 0xFFFFFFFF))
	if f.Channels != 2 || len(got) != 4 || got[3] != 4 {
		t.Fatalf("stream: %v %v", f, got)
	}
	bad := []struct {
		b    []byte
		want string
	}{
		{[]byte("hello world, not a wav"), "not a WAV"},
		{wavFile(2, 1, 8000, 4, nil, false, 1), "0x0002 is not supported"},
		{wavFile(1, 1, 8000, 12, nil, false, 1), "12 bits"},
		{wavFile(3, 1, 8000, 16, nil, false, 1), "float with 16 bits"},
		{wavFile(1, 0, 8000, 16, nil, false, 1), "0 channels"},
		{[]byte("RIFF\x00\x00\x00\x00WAVE"), "no fmt chunk"},
		{[]byte("RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00"), "before its fmt"},
	}
	for _, c := range bad {
		_, err := NewWAVReader(bytes.NewReader(c.b))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

func TestWAVWriterRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWAVWriter(f, 24000, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := tone(440, 24000, 0.25, 8000)
	if err := w.WriteSamples(in[:1000]); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(Bytes(in[1000:])); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	b, _ := os.ReadFile(path)
	if len(b) != 44+2*len(in) {
		t.Fatalf("file is %d bytes, want %d", len(b), 44+2*len(in))
	}
	if got := binary.LittleEndian.Uint32(b[4:]); got != uint32(36+2*len(in)) {
		t.Errorf("RIFF size %d", got)
	}
	if got := binary.LittleEndian.Uint32(b[40:]); got != uint32(2*len(in)) {
		t.Errorf("data size %d", got)
	}
	format, got := readAllWAV(t, b)
	if format.SampleRate != 24000 || len(got) != len(in) || got[123] != in[123] {
		t.Errorf("round trip: %v, %d samples", format, len(got))
	}
}

func TestStreamHeader(t *testing.T) {
	h := StreamHeader(24000, 1)
	if len(h) != 44 || string(h[0:4]) != "RIFF" || string(h[36:40]) != "data" {
		t.Fatalf("header %q", h)
	}
	if binary.LittleEndian.Uint32(h[4:]) != 0xFFFFFFFF || binary.LittleEndian.Uint32(h[40:]) != 0xFFFFFFFF {
		t.Error("stream sizes must be 0xFFFFFFFF")
	}
	// A non-seekable writer keeps the stream header.
	var buf bytes.Buffer
	w, _ := NewWAVWriter(&buf, 24000, 1)
	w.WriteSamples([]int16{1, 2, 3})
	w.Close()
	if !bytes.Equal(buf.Bytes()[:44], h) || buf.Len() != 50 {
		t.Errorf("stream WAV: %d bytes", buf.Len())
	}
	r, err := NewWAVReader(bytes.NewReader(buf.Bytes()))
	if err != nil || r.Format.SampleRate != 24000 || r.Format.Bits != 16 {
		t.Fatalf("reading stream header: %v %v", r, err)
	}
}

func TestLevel(t *testing.T) {
	rms, peak := Level(tone(1000, 24000, 1, 32767))
	if math.Abs(rms+3.0) > 0.1 || math.Abs(peak) > 0.1 {
		t.Errorf("full-scale sine: rms %.1f peak %.1f, want -3.0 / 0", rms, peak)
	}
	rms, peak = Level(tone(1000, 24000, 1, 3277))
	if math.Abs(rms+23.0) > 0.1 || math.Abs(peak+20) > 0.1 {
		t.Errorf("-20 dB sine: rms %.1f peak %.1f", rms, peak)
	}
	if rms, peak := Level(make([]int16, 10)); rms != SilenceDB || peak != SilenceDB {
		t.Errorf("silence: %v %v", rms, peak)
	}
}

func TestPCMConversions(t *testing.T) {
	s := []int16{0, 1, -1, 32767, -32768}
	b := Bytes(s)
	if !bytes.Equal(b, []byte{0, 0, 1, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0x80}) {
		t.Fatalf("Bytes %v", b)
	}
	if got := Samples(append(b, 7)); len(got) != 5 || got[4] != -32768 {
		t.Fatalf("Samples %v", got)
	}
	if got := Downmix(nil, []int16{100, 200, -100, -201, 5}, 2); len(got) != 2 || got[0] != 150 || got[1] != -151 {
		t.Fatalf("Downmix %v", got)
	}
}
