package ingest

import (
	"fmt"

	"github.com/babelcast/babelcast/internal/audio/opus"
)

// opusInput decodes a speaker's Opus (start message "codec":"opus"): binary
// messages of length-prefixed packets on a 48 kHz clock, decoded straight
// to the 24 kHz the rest of babelcast speaks. Reader goroutine only.
type opusInput struct {
	dec *opus.Decoder
	buf []int16
}

func newOpusInput() (*opusInput, error) {
	dec, err := opus.NewDecoder()
	if err != nil {
		return nil, err
	}
	return &opusInput{dec: dec}, nil
}

// decode returns the samples of one binary message (valid until the next
// call), or why it is not Opus as the protocol frames it.
func (o *opusInput) decode(msg []byte) ([]int16, error) {
	pks, err := opus.SplitFramed(msg)
	if err != nil {
		return nil, fmt.Errorf("binary message of %d bytes: %v; Opus goes as packets each preceded by its length (2 bytes, big-endian)", len(msg), err)
	}
	o.buf = o.buf[:0]
	for i, p := range pks {
		if o.buf, err = o.dec.Decode(o.buf, p); err != nil {
			return nil, fmt.Errorf("packet %d of %d in a binary message: %v", i+1, len(pks), err)
		}
	}
	return o.buf, nil
}
