package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// WAVFormat describes the audio in a WAV file.
type WAVFormat struct {
	SampleRate int
	Channels   int
	Bits       int  // per sample: 8, 16, 24 or 32 (64 for double floats)
	Float      bool // IEEE float samples rather than integers
}

func (f WAVFormat) String() string {
	kind := "int"
	if f.Float {
		kind = "float"
	}
	return fmt.Sprintf("%d Hz, %d channel(s), %d-bit %s", f.SampleRate, f.Channels, f.Bits, kind)
}

// ErrNotWAV is returned by NewWAVReader for input that is not RIFF/WAVE.
var ErrNotWAV = errors.New("not a WAV file (no RIFF/WAVE header)")

// unbounded marks a data chunk whose size is unknown (a stream): read to EOF.
const unbounded = -1

// WAVReader decodes the PCM of a RIFF/WAVE stream into int16 samples. It
// accepts 8-, 16-, 24- and 32-bit integer PCM and 32/64-bit float, any
// channel count and rate, skips chunks it does not know, and reads a data
// chunk of size 0 or 0xFFFFFFFF (an endless stream) until EOF.
type WAVReader struct {
	Format WAVFormat

	r         io.Reader
	block     int   // bytes per frame (all channels)
	remaining int64 // data bytes left, or unbounded
	buf       []byte
	carry     int // bytes of a partial frame at the start of buf
	err       error
}

// maxFmtChunk bounds the fmt chunk we are willing to read into memory.
const maxFmtChunk = 1024

// NewWAVReader reads the header of a WAV stream up to the start of its data.
func NewWAVReader(r io.Reader) (*WAVReader, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, ErrNotWAV
		}
		return nil, fmt.Errorf("read WAV header: %w", err)
	}
	switch {
	case string(hdr[0:4]) == "RF64" && string(hdr[8:12]) == "WAVE":
		return nil, errors.New("RF64 WAV files are not supported; convert to an ordinary WAV")
	case string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE":
		return nil, ErrNotWAV
	}
	w := &WAVReader{r: r}
	haveFmt := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				if !haveFmt {
					return nil, errors.New("WAV file has no fmt chunk")
				}
				return nil, errors.New("WAV file has no data chunk")
			}
			return nil, fmt.Errorf("read WAV chunk: %w", err)
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if size < 16 || size > maxFmtChunk {
				return nil, fmt.Errorf("WAV fmt chunk has a bad size (%d bytes)", size)
			}
			b := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, fmt.Errorf("read WAV fmt chunk: %w", err)
			}
			if err := w.parseFmt(b[:size]); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, errors.New("WAV data chunk comes before its fmt chunk")
			}
			w.remaining = size
			if size == 0 || size == 0xFFFFFFFF {
				w.remaining = unbounded
			}
			w.buf = make([]byte, 0, 4096*w.block)
			return w, nil
		default:
			// LIST, fact, bext, cue … : not audio. Chunks are word aligned.
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, fmt.Errorf("WAV chunk %q is cut short: %w", id, err)
			}
		}
	}
}

func (w *WAVReader) parseFmt(b []byte) error {
	tag := binary.LittleEndian.Uint16(b[0:])
	channels := int(binary.LittleEndian.Uint16(b[2:]))
	rate := int(binary.LittleEndian.Uint32(b[4:]))
	blockAlign := int(binary.LittleEndian.Uint16(b[12:]))
	bits := int(binary.LittleEndian.Uint16(b[14:]))
	if tag == 0xFFFE { // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID
		if len(b) < 40 {
			return errors.New("WAV extensible fmt chunk is too short")
		}
		tag = binary.LittleEndian.Uint16(b[24:])
	}
	f := WAVFormat{SampleRate: rate, Channels: channels, Bits: bits}
	switch tag {
	case 1:
		if bits != 8 && bits != 16 && bits != 24 && bits != 32 {
			return fmt.Errorf("WAV PCM with %d bits per sample is not supported (8, 16, 24 or 32)", bits)
		}
	case 3:
		if bits != 32 && bits != 64 {
			return fmt.Errorf("WAV float with %d bits per sample is not supported (32 or 64)", bits)
		}
		f.Float = true
	default:
		return fmt.Errorf("WAV encoding 0x%04x is not supported: use PCM (integer or float), not compressed audio", tag)
	}
	if channels < 1 || channels > 32 {
		return fmt.Errorf("WAV with %d channels is not supported", channels)
	}
	if rate <= 0 {
		return fmt.Errorf("WAV sample rate %d is invalid", rate)
	}
	if want := channels * bits / 8; blockAlign != want {
		return fmt.Errorf("WAV block align %d does not match %d channel(s) of %d bits", blockAlign, channels, bits)
	}
	w.Format = f
	w.block = blockAlign
	return nil
}

// Read decodes interleaved samples (whole frames of Format.Channels) into
// p, converting them to int16. It returns io.EOF at the end of the data; a
// partial frame at the very end is dropped.
func (w *WAVReader) Read(p []int16) (int, error) {
	frames := len(p) / w.Format.Channels
	if frames == 0 {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("WAV read buffer of %d samples holds no whole frame of %d channels", len(p), w.Format.Channels)
	}
	for {
		whole := w.carry / w.block
		if whole > 0 {
			n := min(whole, frames)
			w.decode(p, w.buf[:n*w.block])
			rest := copy(w.buf, w.buf[n*w.block:w.carry])
			w.carry = rest
			return n * w.Format.Channels, nil
		}
		if w.err != nil {
			return 0, w.err
		}
		want := int64(min(frames, cap(w.buf)/w.block) * w.block)
		if w.remaining != unbounded {
			want = min(want, w.remaining+int64(w.carry))
		}
		want -= int64(w.carry)
		if want <= 0 {
			w.err = io.EOF
			continue
		}
		buf := w.buf[:cap(w.buf)]
		n, err := w.r.Read(buf[w.carry : w.carry+int(want)])
		w.carry += n
		if w.remaining != unbounded {
			w.remaining -= int64(n)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.EOF // a file cut short ends where it ends
			}
			w.err = err
		}
	}
}

func (w *WAVReader) decode(dst []int16, b []byte) {
	switch {
	case w.Format.Float && w.Format.Bits == 32:
		for i := 0; i+4 <= len(b); i += 4 {
			dst[i/4] = floatTo16(float64(math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))))
		}
	case w.Format.Float:
		for i := 0; i+8 <= len(b); i += 8 {
			dst[i/8] = floatTo16(math.Float64frombits(binary.LittleEndian.Uint64(b[i:])))
		}
	case w.Format.Bits == 8: // unsigned, centred on 128
		for i, v := range b {
			dst[i] = int16(int(v)-128) << 8
		}
	case w.Format.Bits == 16:
		for i := 0; i+2 <= len(b); i += 2 {
			dst[i/2] = int16(binary.LittleEndian.Uint16(b[i:]))
		}
	case w.Format.Bits == 24:
		for i := 0; i+3 <= len(b); i += 3 {
			// The top two bytes are the 16-bit sample.
			dst[i/3] = int16(uint16(b[i+1]) | uint16(b[i+2])<<8)
		}
	case w.Format.Bits == 32:
		for i := 0; i+4 <= len(b); i += 4 {
			dst[i/4] = int16(binary.LittleEndian.Uint32(b[i:]) >> 16)
		}
	}
}

func floatTo16(f float64) int16 {
	if math.IsNaN(f) {
		return 0
	}
	return clip16(f * 32768)
}

// StreamHeader is the 44-byte header of a PCM16 WAV whose length is not
// known: its RIFF and data sizes are 0xFFFFFFFF, which players read as
// "until the stream ends".
func StreamHeader(rate, channels int) []byte {
	return wavHeader(rate, channels, 0xFFFFFFFF, 0xFFFFFFFF)
}

func wavHeader(rate, channels int, riffSize, dataSize uint32) []byte {
	b := make([]byte, 0, 44)
	le := binary.LittleEndian
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, riffSize)
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, 1) // PCM
	b = le.AppendUint16(b, uint16(channels))
	b = le.AppendUint32(b, uint32(rate))
	b = le.AppendUint32(b, uint32(rate*channels*2))
	b = le.AppendUint16(b, uint16(channels*2))
	b = le.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = le.AppendUint32(b, dataSize)
	return b
}

// WAVWriter writes PCM16LE audio as a WAV file. Its header starts out with
// stream sizes (0xFFFFFFFF), so what is written is playable even if the
// writer never closes; Close fixes the sizes when the destination can seek.
type WAVWriter struct {
	w        io.Writer
	rate     int
	channels int
	n        int64 // data bytes written
	start    int64 // offset of the header, or -1 when w cannot seek
	err      error
	closed   bool
}

// NewWAVWriter writes the header and returns a writer for the samples.
func NewWAVWriter(w io.Writer, rate, channels int) (*WAVWriter, error) {
	if rate <= 0 || channels < 1 || channels > 32 {
		return nil, fmt.Errorf("WAV writer: bad format %d Hz, %d channels", rate, channels)
	}
	start := int64(-1)
	if ws, ok := w.(io.WriteSeeker); ok {
		if off, err := ws.Seek(0, io.SeekCurrent); err == nil {
			start = off
		}
	}
	if _, err := w.Write(StreamHeader(rate, channels)); err != nil {
		return nil, fmt.Errorf("write WAV header: %w", err)
	}
	return &WAVWriter{w: w, rate: rate, channels: channels, start: start}, nil
}

// Write appends PCM16LE bytes (interleaved frames).
func (w *WAVWriter) Write(pcm []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errors.New("WAV writer is closed")
	}
	n, err := w.w.Write(pcm)
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("write WAV data: %w", err)
	}
	return n, w.err
}

// WriteSamples appends samples.
func (w *WAVWriter) WriteSamples(s []int16) error {
	_, err := w.Write(Bytes(s))
	return err
}

// DataBytes is how many bytes of audio have been written.
func (w *WAVWriter) DataBytes() int64 { return w.n }

// Close finishes the file: it pads the data to a whole word and, if the
// destination is an io.WriteSeeker, writes the real sizes into the header.
// It does not close the destination.
func (w *WAVWriter) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if w.n%2 == 1 {
		if _, err := w.w.Write([]byte{0}); err != nil {
			return fmt.Errorf("write WAV pad: %w", err)
		}
	}
	ws, ok := w.w.(io.WriteSeeker)
	if !ok || w.start < 0 {
		return nil // a stream: the header keeps its stream sizes
	}
	data := uint32(min(w.n, 0xFFFFFFFF-36-1))
	riff := 36 + data + data%2
	end, err := ws.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("seek in WAV file: %w", err)
	}
	if _, err := ws.Seek(w.start, io.SeekStart); err != nil {
		return fmt.Errorf("seek to WAV header: %w", err)
	}
	if _, err := ws.Write(wavHeader(w.rate, w.channels, riff, data)); err != nil {
		return fmt.Errorf("rewrite WAV header: %w", err)
	}
	if _, err := ws.Seek(end, io.SeekStart); err != nil {
		return fmt.Errorf("seek to WAV end: %w", err)
	}
	return nil
}
