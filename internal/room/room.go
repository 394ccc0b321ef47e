// Package room is the room model shared by every role: what a room is, how
// it is validated, and where it is kept (JetStream KV, see Store).
package room

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Room is one talk or track: a speaker in a source language, interpreted into
// a set of target languages.
type Room struct {
	ID             string          `json:"id"`
	Name           string          `json:"name"`
	SourceLanguage string          `json:"source_language"`
	Languages      []Language      `json:"languages"`
	Glossary       []GlossaryEntry `json:"glossary"`
	// Notes tell interpreters about the talk (topic, speaker names).
	Notes string `json:"notes,omitempty"`
	// Passcode, when set, is required of listeners (?passcode=).
	Passcode string `json:"passcode,omitempty"`
	// MaxMics bounds the mics live at once (DefaultMaxMics when zero).
	MaxMics int `json:"max_mics"`
	// Questions lets the audience ask to speak: an attendee's phone
	// becomes a mic once the organizers or the speaker accept.
	Questions bool `json:"questions"`
	// Record keeps every channel's audio (Ogg/Opus) with the transcripts
	// every room keeps; PublicTranscript lets attendees (with the
	// passcode, if any) download the transcripts, not only organizers.
	Record           bool      `json:"record"`
	PublicTranscript bool      `json:"public_transcript"`
	SpeakerKey       string    `json:"speaker_key"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Language is one target language of a room: a channel.
type Language struct {
	Code string `json:"code"`
	// Voice of the instructed realtime model; empty lets the engine choose.
	Voice string `json:"voice,omitempty"`
	// Mode picks the kind of session: auto, translate or interpret.
	Mode string `json:"mode,omitempty"`
	// AlwaysOn keeps the channel's session running with no listeners.
	AlwaysOn bool `json:"always_on,omitempty"`
}

// GlossaryEntry is a name or term the interpreters must handle as given.
type GlossaryEntry struct {
	Term string `json:"term"`
	Note string `json:"note,omitempty"`
	// Translations by language code; absent means keep the term as is
	// unless the note says otherwise.
	Translations map[string]string `json:"translations,omitempty"`
}

// Session modes of a Language.
const (
	ModeAuto      = "auto"
	ModeTranslate = "translate"
	ModeInterpret = "interpret"
)

// Voices of the instructed realtime model.
var Voices = []string{"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}

// Limits on what a room may hold.
const (
	MaxNameLen      = 200
	MaxLanguages    = 24
	MaxGlossary     = 200
	MaxTermLen      = 100
	MaxNoteLen      = 500
	MaxNotesLen     = 4000
	MaxPasscodeLen  = 64
	MaxIDLen        = 48
	speakerKeyBytes = 24
	// DefaultMaxMics and MaxMaxMics bound a room's live mics.
	DefaultMaxMics = 8
	MaxMaxMics     = 32
)

var idPattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`)

// ValidationError says which field is wrong and why; the API turns it into 400.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, a ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, a...)}
}

// ValidID checks a room id: a lowercase slug that is safe in NATS subjects.
func ValidID(id string) error {
	if len(id) > MaxIDLen || !idPattern.MatchString(id) {
		return invalid("id", "must be 1-%d lowercase letters, digits and inner dashes", MaxIDLen)
	}
	return nil
}

// Normalize fills defaults, canonicalizes language codes and checks every
// field. It changes r in place and returns the first problem found.
func (r *Room) Normalize() error {
	if err := ValidID(r.ID); err != nil {
		return err
	}
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" {
		r.Name = r.ID
	}
	if utf8.RuneCountInString(r.Name) > MaxNameLen {
		return invalid("name", "longer than %d characters", MaxNameLen)
	}
	if r.SourceLanguage == "" {
		return invalid("source_language", "is required")
	}
	src, err := ParseLang(r.SourceLanguage)
	if err != nil {
		return invalid("source_language", "%v", err)
	}
	r.SourceLanguage = src.Code
	if len(r.Languages) > MaxLanguages {
		return invalid("languages", "at most %d languages", MaxLanguages)
	}
	seen := map[string]bool{}
	for i := range r.Languages {
		l := &r.Languages[i]
		field := fmt.Sprintf("languages[%d]", i)
		pl, err := ParseLang(l.Code)
		if err != nil {
			return invalid(field+".code", "%v", err)
		}
		l.Code = pl.Code
		if l.Code == r.SourceLanguage {
			return invalid(field+".code", "%s is the source language: its listeners hear the floor", l.Code)
		}
		if seen[l.Code] {
			return invalid(field+".code", "%s is listed twice", l.Code)
		}
		seen[l.Code] = true
		if l.Voice != "" && !isVoice(l.Voice) {
			return invalid(field+".voice", "unknown voice %q; voices: %s", l.Voice, strings.Join(Voices, ", "))
		}
		switch l.Mode {
		case "":
			l.Mode = ModeAuto
		case ModeAuto, ModeTranslate, ModeInterpret:
		default:
			return invalid(field+".mode", "must be auto, translate or interpret")
		}
	}
	if r.Languages == nil {
		r.Languages = []Language{}
	}
	if len(r.Glossary) > MaxGlossary {
		return invalid("glossary", "at most %d entries", MaxGlossary)
	}
	for i := range r.Glossary {
		g := &r.Glossary[i]
		field := fmt.Sprintf("glossary[%d]", i)
		g.Term = strings.TrimSpace(g.Term)
		if g.Term == "" {
			return invalid(field+".term", "is required")
		}
		if utf8.RuneCountInString(g.Term) > MaxTermLen {
			return invalid(field+".term", "longer than %d characters", MaxTermLen)
		}
		if utf8.RuneCountInString(g.Note) > MaxNoteLen {
			return invalid(field+".note", "longer than %d characters", MaxNoteLen)
		}
		for code, tr := range g.Translations {
			pl, err := ParseLang(code)
			if err != nil {
				return invalid(field+".translations", "%v", err)
			}
			if utf8.RuneCountInString(tr) > MaxTermLen {
				return invalid(field+".translations."+code, "longer than %d characters", MaxTermLen)
			}
			if pl.Code != code {
				delete(g.Translations, code)
				g.Translations[pl.Code] = tr
			}
		}
	}
	if r.Glossary == nil {
		r.Glossary = []GlossaryEntry{}
	}
	if utf8.RuneCountInString(r.Notes) > MaxNotesLen {
		return invalid("notes", "longer than %d characters", MaxNotesLen)
	}
	if len(r.Passcode) > MaxPasscodeLen {
		return invalid("passcode", "longer than %d characters", MaxPasscodeLen)
	}
	if r.MaxMics == 0 {
		r.MaxMics = DefaultMaxMics
	}
	if r.MaxMics < 1 || r.MaxMics > MaxMaxMics {
		return invalid("max_mics", "must be 1 to %d", MaxMaxMics)
	}
	return nil
}

// micPattern is what a mic id may be: it names a NATS subject token.
var micPattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// ValidMic checks a mic id.
func ValidMic(id string) error {
	if !micPattern.MatchString(id) {
		return fmt.Errorf("mic %q must be 1-32 of a-z, 0-9 and -", truncate(id, 40))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// SpeakerLanguage checks a language a mic says it speaks: the room's
// source language or one of its languages. It returns the canonical code.
func (r *Room) SpeakerLanguage(code string) (string, error) {
	l, err := ParseLang(code)
	if err != nil || !r.Serves(l.Code) {
		langs := []string{r.SourceLanguage}
		for _, x := range r.Languages {
			langs = append(langs, x.Code)
		}
		return "", fmt.Errorf("room %q has no language %q; a mic may speak %s", r.ID, truncate(code, 40), strings.Join(langs, ", "))
	}
	return l.Code, nil
}

func isVoice(v string) bool {
	for _, x := range Voices {
		if x == v {
			return true
		}
	}
	return false
}

// Language returns the room's channel for code, if the room has one.
func (r *Room) Language(code string) (Language, bool) {
	for _, l := range r.Languages {
		if l.Code == code {
			return l, true
		}
	}
	return Language{}, false
}

// Serves reports whether lang is a channel listeners can pick: one of the
// target languages, or the source language (the floor).
func (r *Room) Serves(lang string) bool {
	if lang == r.SourceLanguage {
		return true
	}
	_, ok := r.Language(lang)
	return ok
}

// NewSpeakerKey returns a fresh random speaker key.
func NewSpeakerKey() string {
	b := make([]byte, speakerKeyBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return "spk_" + base64.RawURLEncoding.EncodeToString(b)
}

// CheckSpeakerKey compares a presented key with the room's in constant time.
func (r *Room) CheckSpeakerKey(key string) bool {
	return key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(r.SpeakerKey)) == 1
}

// CheckPasscode reports whether a listener may join with passcode.
func (r *Room) CheckPasscode(passcode string) bool {
	return r.Passcode == "" || subtle.ConstantTimeCompare([]byte(passcode), []byte(r.Passcode)) == 1
}

// Public is what anyone may know of a room: no keys, no passcode.
type Public struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	SourceLanguage Lang   `json:"source_language"`
	Languages      []Lang `json:"languages"`
	Passcode       bool   `json:"passcode_required"`
	// Questions: the audience may ask to speak.
	Questions bool `json:"questions"`
	// Record: the room's audio is recorded; PublicTranscript: attendees
	// may download its transcripts.
	Record           bool `json:"record"`
	PublicTranscript bool `json:"public_transcript"`
}

// Public returns the room as shown to attendees.
func (r *Room) Public() Public {
	p := Public{ID: r.ID, Name: r.Name, Passcode: r.Passcode != "", Questions: r.Questions, Languages: []Lang{},
		Record: r.Record, PublicTranscript: r.PublicTranscript}
	p.SourceLanguage, _ = ParseLang(r.SourceLanguage)
	for _, l := range r.Languages {
		pl, _ := ParseLang(l.Code)
		p.Languages = append(p.Languages, pl)
	}
	return p
}
