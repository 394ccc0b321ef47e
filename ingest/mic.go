package ingest

// This file makes a speaker connection one of the room's mics: claiming
// the mic (taking over, joining, the room's max_mics), a question's mic
// that ends with its question, and a mic switching its language.

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/kvlease"
	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/wire"
)

// idleClaim is how long a connection may say nothing before it takes over
// mic "main" anyway: a speaker connection always took the room's speaker
// over as it connected, and clients that connect and wait still expect
// it. One that starts within this names its mic first.
const idleClaim = time.Second

// claimIdle is the idle timer's: the connection said nothing, so it
// becomes mic "main", as it would with its first audio.
func (sp *speaker) claimIdle() {
	sp.claimMu.Lock()
	claimed := sp.mic != ""
	sp.claimMu.Unlock()
	if claimed {
		return // it started meanwhile: its start said what it is
	}
	if code, _ := sp.claim(livestate.DefaultMic, "", "", audio.Rate); code != "" {
		sp.log.Debug("idle connection not made the main mic", "why", code) // its start or audio will say why
	}
}

// claim makes the connection mic of the room, speaking lang (the room's
// source language when empty), with the given name and input rate. A mic
// id that is live takes it over; any other joins the room's live mics, up
// to the room's max_mics. Once claimed, the mic is the connection's for
// good: a later start may change its name, language and rate, not its id.
// It returns an error code and message when it refuses.
func (sp *speaker) claim(mic, name, lang string, rate int) (code, msg string) {
	if q := sp.question; q != nil {
		// A question speaks as its own mic, in the language it was asked in.
		mic, name, lang = q.Mic(), q.Name, q.Language
	} else if strings.HasPrefix(mic, question.MicPrefix) {
		return wire.CodeBadMic, "mic ids starting with " + question.MicPrefix + " are for audience questions"
	}
	if err := room.ValidMic(mic); err != nil {
		return wire.CodeBadMic, err.Error()
	}
	name = cleanName(name)
	rm := sp.room()
	if lang == "" {
		lang = rm.SourceLanguage
	}
	lang, err := rm.SpeakerLanguage(lang)
	if err != nil {
		return wire.CodeBadLanguage, err.Error()
	}
	sp.claimMu.Lock()
	defer sp.claimMu.Unlock()
	if sp.ctx.Err() != nil {
		return wire.CodeShuttingDown, "the connection is closing" // an idle claim that came too late
	}
	if sp.mic != "" {
		if mic != sp.mic {
			return wire.CodeBadMic, fmt.Sprintf("this connection is mic %q already (it waited over %v without a start message); reconnect and start first", sp.mic, idleClaim)
		}
		sp.mu.Lock()
		sp.rate, sp.name, sp.lang = rate, name, lang
		sp.mu.Unlock()
		sp.rewriteEntry()
		return "", ""
	}
	if err := sp.s.roomForMic(sp.ctx, rm, mic); err != nil {
		return wire.CodeTooManyMics, err.Error()
	}
	sp.mu.Lock()
	sp.rate, sp.name, sp.lang = rate, name, lang
	sp.mu.Unlock()
	sp.mic = mic
	sp.slot = kvlease.New(kvlease.Options{
		KV: sp.s.o.State, Key: livestate.MicKey(sp.roomID, mic), TTL: livestate.TTL, Every: sp.s.o.Refresh,
		Timeout: writeWait, Log: sp.log.With("mic", mic),
	})
	sp.s.takeOver(sp)
	sp.held.Add(2)
	go func() { defer sp.held.Done(); sp.s.holdSlot(sp.ctx, sp) }()
	go func() { defer sp.held.Done(); sp.showLevel(sp.ctx) }()
	if sp.question != nil {
		sp.held.Add(1)
		go func() { defer sp.held.Done(); sp.followQuestion(sp.ctx) }()
	}
	sp.log.Info("mic live", "mic", mic, "sample_rate", rate, "language", lang, "name", name)
	return "", ""
}

// followQuestion ends a question's mic when the question ends (or is
// deleted with its room).
func (sp *speaker) followQuestion(ctx context.Context) {
	updates, err := sp.s.o.Questions.Watch(ctx, sp.roomID, sp.question.ID)
	if err != nil {
		sp.log.Warn("question not followed; its mic ends when the asker hangs up", "err", err)
		return
	}
	for q := range updates {
		if q == nil || q.State != question.Accepted {
			sp.close(wire.CloseNormal, "", "the question ended")
			return
		}
	}
}

// switchLanguage changes what the mic speaks from now on.
func (sp *speaker) switchLanguage(lang string) {
	lang, err := sp.room().SpeakerLanguage(lang)
	if err != nil {
		sp.badInput(wire.CloseBadMessage, wire.CodeBadLanguage, err.Error())
		return
	}
	sp.mu.Lock()
	was := sp.lang
	sp.lang = lang
	sp.mu.Unlock()
	if was != lang {
		sp.log.Info("mic switched language", "from", was, "to", lang)
		sp.rewriteEntry()
		sp.send(sp.status())
	}
}

// cleanName keeps a mic's name to one printable line of maxNameLen runes.
func cleanName(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }), " ")
	if utf8.RuneCountInString(s) > maxNameLen {
		s = string([]rune(s)[:maxNameLen])
	}
	return s
}
