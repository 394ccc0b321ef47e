package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/babelcast/babelcast/internal/audio"
)

// synthesizer speaks text with espeak-ng. espeak-ng has no mode that takes
// many texts and marks where each one's audio ends, so each turn runs one
// short process (about 70 ms to start and speak a sentence on a small
// machine; see docs/local-engine.md). Its WAV output is read as it is
// produced, resampled to 24 kHz and handed on in pieces, so the first
// piece does not wait for the whole sentence.
type synthesizer struct {
	log   *slog.Logger
	bin   string
	voice voice
	wpm   int
}

// synthTimeout bounds one turn's synthesis.
const synthTimeout = 30 * time.Second

// pieceSamples is the largest audio piece handed to the sink: 200 ms.
const pieceSamples = audio.Rate / 5

// speak synthesizes text and calls emit with 24 kHz pieces of at most
// 200 ms, in order.
func (s *synthesizer) speak(ctx context.Context, text string, emit func([]int16)) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, synthTimeout)
	defer cancel()
	// Text on stdin, so nothing in it is read as an option; -b 1: UTF-8.
	cmd := exec.CommandContext(ctx, s.bin, "-v", s.voice.File, "-s", strconv.Itoa(s.wpm), "-b", "1", "--stdout")
	configureProc(cmd)
	cmd.Stdin = strings.NewReader(text)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr := newTail(4, nil)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start espeak-ng: %w", err)
	}
	errDone := make(chan struct{})
	go func() { stderr.consume(errPipe); close(errDone) }()
	rerr := s.stream(stdout, emit)
	if rerr != nil {
		killGroup(cmd)
	}
	_, _ = io.Copy(io.Discard, stdout)
	<-errDone
	werr := cmd.Wait()
	switch {
	case rerr != nil:
		return fmt.Errorf("espeak-ng output: %w (%s)", rerr, stderr)
	case werr != nil:
		return fmt.Errorf("espeak-ng: %w (%s)", werr, stderr)
	}
	return nil
}

func (s *synthesizer) stream(r io.Reader, emit func([]int16)) error {
	w, err := audio.NewWAVReader(r)
	if err != nil {
		return err
	}
	if w.Format.Channels != 1 {
		return fmt.Errorf("espeak-ng gave %s, not mono", w.Format)
	}
	rs := audio.NewResampler(w.Format.SampleRate, audio.Rate)
	buf := make([]int16, 2048)
	var pending []int16
	flush := func(all bool) {
		for len(pending) >= pieceSamples || (all && len(pending) > 0) {
			n := min(len(pending), pieceSamples)
			emit(append([]int16(nil), pending[:n]...))
			pending = pending[n:]
		}
	}
	for {
		n, err := w.Read(buf)
		if n > 0 {
			pending = append(pending, rs.Process(buf[:n])...)
			flush(false)
		}
		if errors.Is(err, io.EOF) {
			pending = append(pending, rs.Flush()...)
			flush(true)
			return nil
		}
		if err != nil {
			return err
		}
	}
}
