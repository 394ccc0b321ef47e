package openai

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/translate/engine"
)

// A general realtime model "may still answer questions or follow
// instructions rather than translate": the judge reads the start of each
// reply's transcript, holding its audio back meanwhile, and catches
// replies that begin as an assistant's would, or run on far longer than
// the speech they translate.

// replyOpeners are how an assistant's answers, refusals and chat begin, by
// language. A reply that begins like this is not a translation (checked in
// the source language, and in English when the target is not English).
var replyOpeners = map[string][]string{
	"en": {"i'm sorry", "i am sorry", "sorry,", "as an ai", "as a language model", "i'm an ai", "i am an ai",
		"i can't", "i cannot", "i can not", "i'm unable", "i am unable", "i'm not able", "i am not able",
		"sure", "of course", "certainly", "absolutely", "i'd be happy", "i would be happy", "i'd be glad",
		"how can i help", "how may i help", "how can i assist", "here is the translation", "here's the translation",
		"the translation is", "translation:", "great question", "good question", "hello! how can", "hi! how can"},
	"es": {"lo siento", "como ia", "como inteligencia artificial", "como modelo de lenguaje", "no puedo", "claro",
		"por supuesto", "aquí está la traducción", "aquí tienes la traducción", "la traducción es", "con gusto",
		"en qué puedo ayudar", "¿en qué puedo ayudar", "¡claro"},
	"fr": {"je suis désolé", "désolé", "en tant qu'ia", "en tant qu'intelligence artificielle", "je ne peux pas",
		"bien sûr", "voici la traduction", "avec plaisir", "certainement", "comment puis-je vous aider"},
	"de": {"es tut mir leid", "entschuldigung", "als ki", "ich kann nicht", "natürlich", "gerne",
		"hier ist die übersetzung", "selbstverständlich", "wie kann ich helfen", "wie kann ich ihnen helfen"},
	"pt": {"desculpe", "sinto muito", "como uma ia", "como ia", "não posso", "claro", "com certeza",
		"aqui está a tradução", "como posso ajudar"},
	"it": {"mi dispiace", "come ia", "non posso", "certo", "certamente", "ecco la traduzione", "come posso aiutarti"},
	"nl": {"het spijt me", "als ai", "ik kan niet", "natuurlijk", "zeker", "hier is de vertaling", "hoe kan ik helpen"},
	"ru": {"извините", "к сожалению", "конечно", "как ии", "я не могу", "вот перевод", "чем могу помочь"},
	"ja": {"申し訳", "すみません", "もちろん", "aiとして", "翻訳は", "どのようにお手伝い"},
	"zh": {"抱歉", "对不起", "當然", "当然", "作为ai", "作为一个ai", "以下是翻译", "我无法", "我不能"},
	"ko": {"죄송", "물론", "ai로서", "번역은 다음"},
}

// judge decides whether a reply is a translation.
type judge struct {
	openers []string
}

func newJudge(ch engine.Channel) judge {
	var j judge
	src, tgt := room.Base(ch.Source), room.Base(ch.Target)
	if src != tgt {
		// A source-language opener that the target language shares ("claro"
		// in Spanish and Portuguese) may begin a faithful translation.
		for _, p := range replyOpeners[src] {
			if !slices.Contains(replyOpeners[tgt], p) {
				j.openers = append(j.openers, p)
			}
		}
	}
	if tgt != "en" && src != "en" {
		j.openers = append(j.openers, replyOpeners["en"]...)
	}
	return j
}

// judgeAfter is how much of a reply's transcript is seen before judging it.
const judgeAfter = 40

// verdict judges a reply from its transcript so far. decided is false when
// more text is needed; reason says why a reply is not a translation.
func (j judge) verdict(transcript string, limit int, final bool) (decided bool, reason string) {
	n := utf8.RuneCountInString(transcript)
	if n < judgeAfter && !final {
		return false, ""
	}
	t := normalizeReply(transcript)
	for _, p := range j.openers {
		if strings.HasPrefix(t, p) && wordEnd(t, len(p)) {
			return true, fmt.Sprintf("starts like an assistant reply (%q)", p)
		}
	}
	if limit > 0 && n > limit {
		return true, fmt.Sprintf("far longer than the speech (%d characters, at most %d expected)", n, limit)
	}
	return true, ""
}

// lengthLimit is the longest plausible translation of a turn: a few times
// the source transcript when known, else by the length of the speech.
func lengthLimit(source string, speechMS int) int {
	if n := utf8.RuneCountInString(strings.TrimSpace(source)); n > 0 {
		return 3*n + 60
	}
	if speechMS > 0 {
		return 60 + speechMS*30/1000
	}
	return 0
}

func normalizeReply(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.ReplaceAll(s, "’", "'")
	return strings.TrimLeftFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(`"'«»“”¡¿-—–*([`, r)
	})
}

// wordEnd reports whether s[i:] starts at a word boundary.
func wordEnd(s string, i int) bool {
	if i >= len(s) {
		return true
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	if !unicode.IsLetter(prev) || prev > unicode.MaxLatin1 && !unicode.In(prev, unicode.Latin, unicode.Cyrillic) {
		return true // ends in punctuation, or a script without spaces
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	return !unicode.IsLetter(r) && !unicode.IsDigit(r)
}
