// Package local is babelcast's offline interpretation engine: speech
// recognition with PocketSphinx (US English model), translation with
// Apertium, speech with espeak-ng — all Debian packages, no network, no
// keys. It is the engine when no OpenAI key is set, so a fresh machine
// interprets English talks into Spanish or Catalan out of the box.
//
// A session cuts the speaker's audio into turns with an energy voice
// activity detector, streams each turn to its own long-lived recognizer
// while the speaker talks, and when the turn ends publishes what was said
// (source caption), its translation (caption) and the translation spoken
// in the target language's voice. The engine serves what is installed:
// English into every language that has both an Apertium pair from English
// and an espeak-ng voice. See docs/local-engine.md for the measurements.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/babelcast/babelcast/internal/option"
	"github.com/babelcast/babelcast/translate/engine"
)

// Options configure the local engine. Zero values take the defaults.
type Options struct {
	Log *slog.Logger
	// ModelDir is the PocketSphinx US English model (default
	// DefaultModelDir, from pocketsphinx-en-us).
	ModelDir string
	// ApertiumDir holds Apertium's modes/ (default $APERTIUM_DATADIR or
	// DefaultApertiumDir).
	ApertiumDir string
	// Hangover is the quiet that ends a turn (default 500 ms): shorter
	// answers sooner, longer splits fewer sentences.
	Hangover time.Duration
	// MaxTurn is the longest turn (default 10 s); longer speech is cut,
	// at a short pause when there is one near the limit.
	MaxTurn time.Duration
	// MaxBacklog is how much speaker audio a session queues when its
	// recognizer falls behind before dropping the oldest (default 15 s).
	MaxBacklog time.Duration
	// WordsPerMinute is espeak-ng's speaking rate (default 175).
	WordsPerMinute int
	// OnTurn, when set, is called with the timings of every turn once it
	// has been spoken (or skipped). For measurements and tests; it must
	// not block.
	OnTurn func(TurnReport)
}

// Defaults for Options.
const (
	defaultHangover   = 500 * time.Millisecond
	defaultMaxTurn    = 10 * time.Second
	defaultMaxBacklog = 15 * time.Second
	defaultWPM        = 175
)

// TurnReport is what happened to one turn of speech, for measurement.
type TurnReport struct {
	Turn     uint64
	Segment  uint64        // caption segment, when captions were published
	Captured time.Time     // capture time of the turn's first audio
	Length   time.Duration // audio in the turn, hangover included
	Speech   time.Duration // of which the detector judged speech
	Cut      bool          // ended by the length limit
	Ended    time.Time     // when the detector closed the turn
	// When the recognizer's hypothesis, the translation and the first and
	// last translated audio were ready (zero when not reached).
	Recognized, Translated, FirstAudio, Done time.Time
	Source                                   string        // recognized English
	Translation                              string        // in the target language
	Audio                                    time.Duration // of translated speech
	Err                                      error         // why the turn was dropped, if it was
}

// Engine is the offline engine. It keeps one Apertium pipeline per target
// language for all sessions; each session has its own recognizer.
type Engine struct {
	opts  Options
	log   *slog.Logger
	tools *tools
	caps  engine.Capabilities

	mu          sync.Mutex
	translators map[string]*translator
	closed      bool
}

// New discovers the installed recognizer model, Apertium pairs from English
// and espeak-ng voices. It fails, naming the Debian packages to install,
// when the tools are missing or no language can be served.
func New(opts Options) (*Engine, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.ModelDir == "" {
		opts.ModelDir = DefaultModelDir
	}
	if opts.ApertiumDir == "" {
		opts.ApertiumDir = os.Getenv("APERTIUM_DATADIR")
		if opts.ApertiumDir == "" {
			opts.ApertiumDir = DefaultApertiumDir
		}
	}
	opts.Hangover = option.Default(opts.Hangover, defaultHangover)
	opts.MaxTurn = option.Default(opts.MaxTurn, defaultMaxTurn)
	opts.MaxTurn = max(opts.MaxTurn, time.Second)
	opts.MaxBacklog = option.Default(opts.MaxBacklog, defaultMaxBacklog)
	opts.WordsPerMinute = option.Default(opts.WordsPerMinute, defaultWPM)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t, err := discover(ctx, opts.ModelDir, opts.ApertiumDir)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		opts: opts, log: opts.Log, tools: t,
		caps:        engine.Capabilities{Sources: []string{"en"}, Targets: t.targets()},
		translators: map[string]*translator{},
	}
	var voices []string
	for _, lang := range e.caps.Targets {
		v, _ := t.voiceFor(lang, "")
		voices = append(voices, lang+"="+v.File)
	}
	e.log.Info("local engine ready",
		"sources", e.caps.Sources, "targets", e.caps.Targets,
		"asr", "PocketSphinx en-us ("+opts.ModelDir+")",
		"pairs", t.pairNames(), "voices", voices)
	for _, m := range t.ignoredModes {
		e.log.Warn("Apertium mode not usable", "mode", m)
	}
	for lang := range t.pairs {
		if _, ok := t.voiceFor(lang, ""); !ok {
			e.log.Warn("Apertium pair without an espeak-ng voice; language not served", "lang", lang)
		}
	}
	return e, nil
}

// Name is "local", as given to --engine.
func (e *Engine) Name() string { return "local" }

// Capabilities: English into the languages with a pair and a voice.
func (e *Engine) Capabilities() engine.Capabilities {
	return engine.Capabilities{
		Sources: append([]string(nil), e.caps.Sources...),
		Targets: append([]string(nil), e.caps.Targets...),
	}
}

// Close stops the engine's translators. Sessions should be closed first.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.closed = true
	ts := e.translators
	e.translators = map[string]*translator{}
	e.mu.Unlock()
	for _, t := range ts {
		t.close()
	}
	return nil
}

// unsupported is the permanent error for a channel the engine cannot serve.
func (e *Engine) unsupported(ch engine.Channel) error {
	return &engine.Error{
		Code: "unsupported_language",
		Message: fmt.Sprintf("the offline engine interprets English (en) into %s; it cannot interpret %s into %s (install more Apertium pairs and espeak-ng voices, or use the openai engine)",
			strings.Join(e.caps.Targets, ", "), orUnset(ch.Source), orUnset(ch.Target)),
		Permanent: true,
	}
}

func orUnset(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// translatorFor returns the shared pipeline for a target language.
func (e *Engine) translatorFor(lang string) (*translator, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errors.New("local engine closed")
	}
	if t, ok := e.translators[lang]; ok {
		return t, nil
	}
	p, ok := e.tools.pairs[lang]
	if !ok {
		return nil, fmt.Errorf("no Apertium pair into %s", lang)
	}
	t := newTranslator(e.log, p)
	e.translators[lang] = t
	return t, nil
}

// Open starts a session for ch. It returns once the translator is loaded
// and the recognizer started, so the first turn is not held up by them.
func (e *Engine) Open(ctx context.Context, ch engine.Channel, sink engine.Sink) (engine.Session, error) {
	lang := baseLang(ch.Target)
	served := false
	for _, t := range e.caps.Targets {
		served = served || t == lang
	}
	if baseLang(ch.Source) != "en" || !served {
		return nil, e.unsupported(ch)
	}
	v, _ := e.tools.voiceFor(ch.Target, ch.Voice)
	log := e.log.With("room", ch.Room, "lang", ch.Target)
	if ch.Voice != "" && !strings.EqualFold(ch.Voice, v.File) && !strings.EqualFold(ch.Voice, v.Name) &&
		!strings.EqualFold(ch.Voice, baseOf(v.File)) {
		log.Info("voice is not an espeak-ng voice for this language; using the default", "asked", ch.Voice, "voice", v.File)
	}
	tr, err := e.translatorFor(lang)
	if err != nil {
		return nil, err
	}
	if err := tr.warm(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &engine.Error{Code: "engine_failed", Message: "Apertium " + tr.pair.Mode + " does not work: " + err.Error()}
	}
	s, err := newSession(e, ch, sink, log, tr, v)
	if err != nil {
		return nil, &engine.Error{Code: "engine_failed", Message: err.Error()}
	}
	log.Info("local session open", "pair", tr.pair.Mode, "voice", v.File)
	return s, nil
}

func baseOf(file string) string {
	i := strings.LastIndexByte(file, '/')
	return file[i+1:]
}
