package opus

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/babelcast/babelcast/internal/audio"
)

// An Ogg/Opus stream (RFC 7845) is pages: the identification header
// ("OpusHead") alone on the first page, the comment header ("OpusTags") on
// the next, then audio packets, several to a page. Granule positions count
// 48 kHz samples decoded up to the end of the page's last packet.

// PreSkip is the decoder delay announced in OpusHead, in 48 kHz samples:
// libopus's look-ahead (6.5 ms) at any encoder rate.
const PreSkip = 312

// PacketGranules is what a 20 ms packet adds to the granule position.
const PacketGranules = ClockRate / 50

// Page header flags.
const (
	pageContinued = 0x01
	pageFirst     = 0x02
	pageLast      = 0x04
)

// Head returns the OpusHead packet of a mono stream whose PCM was at
// inputRate.
func Head(inputRate int) []byte {
	b := []byte("OpusHead")
	b = append(b, 1, 1) // version, channels
	b = binary.LittleEndian.AppendUint16(b, PreSkip)
	b = binary.LittleEndian.AppendUint32(b, uint32(inputRate))
	b = binary.LittleEndian.AppendUint16(b, 0) // output gain
	return append(b, 0)                        // channel mapping family 0: mono/stereo
}

// Tags returns an OpusTags packet naming the encoder and, if given, the
// stream's title.
func Tags(title string) []byte {
	vendor := "babelcast (libopus)"
	b := []byte("OpusTags")
	b = binary.LittleEndian.AppendUint32(b, uint32(len(vendor)))
	b = append(b, vendor...)
	if title == "" {
		return binary.LittleEndian.AppendUint32(b, 0)
	}
	c := "TITLE=" + title
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(c)))
	return append(b, c...)
}

// Page is one Ogg page to build.
type Page struct {
	Serial  uint32
	Seq     uint32
	Granule int64
	First   bool // beginning of stream
	Last    bool // end of stream
}

// AppendPage appends page p holding packets (whole packets only, at most
// 255 lacing values in all) to dst.
func AppendPage(dst []byte, p Page, packets ...[]byte) ([]byte, error) {
	var lacing []byte
	for _, pk := range packets {
		for n := len(pk); ; n -= 255 {
			if n < 255 {
				lacing = append(lacing, byte(n))
				break
			}
			lacing = append(lacing, 255)
		}
	}
	if len(lacing) > 255 {
		return dst, fmt.Errorf("ogg: %d lacing values do not fit one page", len(lacing))
	}
	start := len(dst)
	dst = append(dst, "OggS"...)
	var flags byte
	if p.First {
		flags |= pageFirst
	}
	if p.Last {
		flags |= pageLast
	}
	dst = append(dst, 0, flags)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(p.Granule))
	dst = binary.LittleEndian.AppendUint32(dst, p.Serial)
	dst = binary.LittleEndian.AppendUint32(dst, p.Seq)
	crcAt := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(len(lacing)))
	dst = append(dst, lacing...)
	for _, pk := range packets {
		dst = append(dst, pk...)
	}
	binary.LittleEndian.PutUint32(dst[crcAt:], crc(dst[start:]))
	return dst, nil
}

// maxPagePackets keeps pages small: a listener joining mid-stream, or a
// recording cut by a crash, loses at most this much.
const maxPagePackets = 50

// Writer writes an Ogg/Opus stream of 20 ms packets.
type Writer struct {
	w       io.Writer
	serial  uint32
	seq     uint32
	granule int64
	buf     []byte
}

// NewWriter writes the stream's headers to w and returns a writer for its
// packets. serial tells this stream from others (any number will do for a
// file of one stream).
func NewWriter(w io.Writer, serial uint32, title string) (*Writer, error) {
	ow := &Writer{w: w, serial: serial}
	if err := ow.page(Page{First: true}, Head(audio.Rate)); err != nil {
		return nil, err
	}
	if err := ow.page(Page{}, Tags(title)); err != nil {
		return nil, err
	}
	return ow, nil
}

func (o *Writer) page(p Page, packets ...[]byte) error {
	p.Serial, p.Seq, p.Granule = o.serial, o.seq, o.granule
	if len(packets) == 0 {
		p.Granule = -1 // Ogg: a page where no packet ends has no position
	}
	var err error
	o.buf, err = AppendPage(o.buf[:0], p, packets...)
	if err != nil {
		return err
	}
	o.seq++
	_, err = o.w.Write(o.buf)
	return err
}

// WritePackets writes 20 ms packets, as one page (or several, if many).
func (o *Writer) WritePackets(packets ...[]byte) error {
	for len(packets) > 0 {
		k := min(len(packets), maxPagePackets)
		o.granule += int64(k) * PacketGranules
		if err := o.page(Page{}, packets[:k]...); err != nil {
			return err
		}
		packets = packets[k:]
	}
	return nil
}

// Granule is the stream's position so far, in 48 kHz samples.
func (o *Writer) Granule() int64 { return o.granule }

// Close ends the stream with an empty last page. It does not close the
// underlying writer.
func (o *Writer) Close() error { return o.page(Page{Last: true}) }

// Reader reads the packets of an Ogg/Opus stream, checking every page's
// CRC. It follows one logical stream (the first it meets).
type Reader struct {
	r       *bufio.Reader
	serial  uint32
	started bool
	partial []byte   // a packet continued on the next page
	ready   [][]byte // whole packets of the current page
	granule int64
	headers int // header packets still to skip
}

// NewReader reads an Ogg/Opus stream; its two header packets are checked
// and skipped.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReader(r), headers: 2} }

// ErrNotOpus is a stream that is not Ogg/Opus.
var ErrNotOpus = errors.New("not an Ogg/Opus stream")

// ReadPacket returns the next audio packet and the granule position of the
// page it ended on.
func (o *Reader) ReadPacket() ([]byte, int64, error) {
	for {
		for len(o.ready) > 0 {
			pk := o.ready[0]
			o.ready = o.ready[1:]
			if o.headers > 0 {
				want := "OpusHead"
				if o.headers == 1 {
					want = "OpusTags"
				}
				if !bytes.HasPrefix(pk, []byte(want)) {
					return nil, 0, fmt.Errorf("%w: expected %s", ErrNotOpus, want)
				}
				o.headers--
				continue
			}
			return pk, o.granule, nil
		}
		if err := o.readPage(); err != nil {
			return nil, 0, err
		}
	}
}

func (o *Reader) readPage() error {
	var h [27]byte
	if _, err := io.ReadFull(o.r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("ogg: truncated page header: %w", err)
		}
		return err
	}
	if string(h[:4]) != "OggS" || h[4] != 0 {
		return fmt.Errorf("%w: no Ogg page where one should start", ErrNotOpus)
	}
	lacing := make([]byte, h[26])
	if _, err := io.ReadFull(o.r, lacing); err != nil {
		return fmt.Errorf("ogg: truncated page: %w", err)
	}
	size := 0
	for _, l := range lacing {
		size += int(l)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(o.r, body); err != nil {
		return fmt.Errorf("ogg: truncated page: %w", err)
	}
	want := binary.LittleEndian.Uint32(h[22:])
	binary.LittleEndian.PutUint32(h[22:], 0)
	page := append(append(append([]byte{}, h[:]...), lacing...), body...)
	if crc(page) != want {
		return errors.New("ogg: page CRC mismatch")
	}
	serial := binary.LittleEndian.Uint32(h[14:])
	if !o.started {
		o.serial, o.started = serial, true
	} else if serial != o.serial {
		return nil // another logical stream: not ours
	}
	if h[5]&pageContinued == 0 {
		o.partial = nil
	}
	o.granule = int64(binary.LittleEndian.Uint64(h[6:]))
	for _, l := range lacing {
		o.partial = append(o.partial, body[:l]...)
		body = body[l:]
		if l < 255 {
			o.ready = append(o.ready, o.partial)
			o.partial = nil
		}
	}
	return nil
}

// crcTable is Ogg's CRC-32: polynomial 0x04c11db7, not reflected, no
// initial or final inversion.
var crcTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func crc(b []byte) uint32 {
	var c uint32
	for _, x := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^x]
	}
	return c
}
