package audio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hajimehoshi/go-mp3"
)

// Source is an audio input turned into babelcast's PCM: 24 kHz (Rate) mono
// int16, whatever it was (WAV of any PCM kind, MP3, raw PCM16LE at a given
// rate). It downmixes and resamples as it reads, so it streams: a long file
// or an endless pipe is never held in memory.
type Source struct {
	dec      frameReader
	channels int
	rate     int
	format   string
	rs       *Resampler
	closer   io.Closer

	in      []int16 // interleaved frames from the decoder
	mono    []int16
	pending []int16 // resampled, not yet read
	eof     bool
	err     error
}

// frameReader yields interleaved int16 frames.
type frameReader interface {
	Read(p []int16) (int, error)
}

const decodeChunk = 4096 // frames per decoder read

// Open opens an audio file: WAV or MP3 (recognised by content), or raw
// PCM16LE mono 24 kHz for a .raw or .pcm name. "-" is raw PCM16LE mono
// 24 kHz on standard input.
func Open(path string) (*Source, error) {
	if path == "-" {
		return NewRawSource(os.Stdin, Rate)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	var s *Source
	switch strings.ToLower(filepath.Ext(path)) {
	case ".raw", ".pcm":
		s, err = NewRawSource(f, Rate)
	default:
		s, err = NewSource(f)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.closer = f
	return s, nil
}

// NewSource reads WAV or MP3 from r, telling them apart by their first
// bytes.
func NewSource(r io.Reader) (*Source, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(12)
	switch {
	case len(head) >= 12 && (string(head[0:4]) == "RIFF" || string(head[0:4]) == "RF64") && string(head[8:12]) == "WAVE":
		w, err := NewWAVReader(br)
		if err != nil {
			return nil, err
		}
		return newSource(w, w.Format.SampleRate, w.Format.Channels, "wav "+w.Format.String())
	case len(head) >= 3 && (bytes.HasPrefix(head, []byte("ID3")) || head[0] == 0xFF && head[1]&0xE0 == 0xE0):
		// go-mp3 scans the whole input for frame offsets when it can
		// seek; hiding Seek keeps it streaming.
		d, err := mp3.NewDecoder(struct{ io.Reader }{br})
		if err != nil {
			return nil, fmt.Errorf("decode MP3: %w", err)
		}
		return newSource(&mp3Reader{raw: rawReader{r: d, channels: 2}}, d.SampleRate(), 2, fmt.Sprintf("mp3 %d Hz", d.SampleRate()))
	case len(head) == 0:
		return nil, errors.New("audio input is empty")
	default:
		return nil, errors.New("unrecognised audio format: expected WAV or MP3 (raw PCM needs a .raw or .pcm name, or stdin)")
	}
}

// NewRawSource reads raw PCM16LE mono at rate from r.
func NewRawSource(r io.Reader, rate int) (*Source, error) {
	if err := CheckRate(rate); err != nil {
		return nil, err
	}
	return newSource(&rawReader{r: r, channels: 1}, rate, 1, fmt.Sprintf("raw PCM16LE %d Hz mono", rate))
}

func newSource(dec frameReader, rate, channels int, format string) (*Source, error) {
	if err := CheckRate(rate); err != nil {
		return nil, err
	}
	return &Source{
		dec: dec, rate: rate, channels: channels, format: format,
		rs: NewResampler(rate, Rate),
		in: make([]int16, decodeChunk*channels),
	}, nil
}

// Format describes the input, for logs: "mp3 44100 Hz".
func (s *Source) Format() string { return s.format }

// InputRate and InputChannels are the input's own rate and channel count.
func (s *Source) InputRate() int     { return s.rate }
func (s *Source) InputChannels() int { return s.channels }

// Read fills p with 24 kHz mono samples. It blocks until at least one is
// ready and returns io.EOF once the input is exhausted.
func (s *Source) Read(p []int16) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(s.pending) == 0 {
		if s.eof {
			if s.err != nil {
				return 0, s.err
			}
			return 0, io.EOF
		}
		s.fill()
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// fill decodes one chunk into pending.
func (s *Source) fill() {
	n, err := s.dec.Read(s.in)
	if n > 0 {
		s.mono = Downmix(s.mono[:0], s.in[:n], s.channels)
		s.pending = append(s.pending[:0], s.rs.Process(s.mono)...)
	}
	if err != nil {
		s.eof = true
		if !errors.Is(err, io.EOF) {
			s.err = err
		}
		s.pending = append(s.pending, s.rs.Flush()...)
	}
}

// Close releases the input file, if Open opened one.
func (s *Source) Close() error {
	if s.closer != nil {
		c := s.closer
		s.closer = nil
		return c.Close()
	}
	return nil
}

// rawReader reads interleaved PCM16LE frames of the given channel count,
// holding a partial trailing frame for the next read.
type rawReader struct {
	r        io.Reader
	channels int
	buf      []byte
	carry    int // bytes of a partial frame at the start of buf
}

func (r *rawReader) Read(p []int16) (int, error) {
	frame := 2 * max(r.channels, 1)
	size := len(p) * 2 / frame * frame
	if size == 0 {
		return 0, nil
	}
	if cap(r.buf) < size+frame {
		nb := make([]byte, size+frame)
		copy(nb, r.buf[:r.carry])
		r.buf = nb
	}
	buf := r.buf[:size]
	for {
		n, err := r.r.Read(buf[r.carry:])
		total := r.carry + n
		whole := total / frame * frame
		AppendSamples(p[:0], buf[:whole])
		r.carry = copy(buf, buf[whole:total])
		if whole > 0 || err != nil {
			if err != nil && errors.Is(err, io.EOF) {
				err = io.EOF
			}
			return whole / 2, err
		}
	}
}

// mp3Reader adapts go-mp3's byte stream (always 16-bit stereo) to frames.
type mp3Reader struct {
	raw rawReader
}

func (m *mp3Reader) Read(p []int16) (int, error) {
	n, err := m.raw.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("decode MP3: %w", err)
	}
	return n, err
}
