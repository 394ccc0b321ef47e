package fakerealtime

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"

	"github.com/babelcast/babelcast/internal/room"
)

// SampleRate is the only rate either endpoint speaks: PCM16LE mono 24 kHz.
const SampleRate = 24000

// languages is the fixed tone table: the language at index i "speaks" a sine
// at 300 + 30·i Hz. 30 Hz apart is far more than a Goertzel filter over a
// 100 ms window (10 Hz bins) needs to tell two languages apart.
var languages = []struct{ code, english string }{
	{"en", "English"}, {"es", "Spanish"}, {"fr", "French"}, {"de", "German"},
	{"it", "Italian"}, {"pt", "Portuguese"}, {"nl", "Dutch"}, {"ru", "Russian"},
	{"zh", "Chinese"}, {"ja", "Japanese"}, {"ko", "Korean"}, {"hi", "Hindi"},
	{"id", "Indonesian"}, {"vi", "Vietnamese"}, {"ar", "Arabic"}, {"tr", "Turkish"},
	{"pl", "Polish"}, {"uk", "Ukrainian"}, {"sv", "Swedish"}, {"nb", "Norwegian"},
	{"da", "Danish"}, {"fi", "Finnish"}, {"cs", "Czech"}, {"el", "Greek"},
	{"he", "Hebrew"}, {"hu", "Hungarian"}, {"ro", "Romanian"}, {"th", "Thai"},
	{"ms", "Malay"}, {"bn", "Bengali"}, {"ta", "Tamil"}, {"te", "Telugu"},
	{"ur", "Urdu"}, {"fa", "Persian"}, {"sk", "Slovak"}, {"bg", "Bulgarian"},
	{"hr", "Croatian"}, {"sr", "Serbian"}, {"sl", "Slovenian"}, {"lt", "Lithuanian"},
	{"lv", "Latvian"}, {"et", "Estonian"}, {"ca", "Catalan"}, {"eu", "Basque"},
	{"gl", "Galician"}, {"sw", "Swahili"}, {"fil", "Filipino"}, {"af", "Afrikaans"},
	{"is", "Icelandic"}, {"ga", "Irish"}, {"cy", "Welsh"}, {"mr", "Marathi"},
	{"gu", "Gujarati"}, {"kn", "Kannada"}, {"ml", "Malayalam"}, {"pa", "Punjabi"},
	{"ne", "Nepali"}, {"am", "Amharic"}, {"yo", "Yoruba"}, {"zu", "Zulu"},
}

// TranslateLanguages are the output languages of the translation model.
var TranslateLanguages = []string{"es", "pt", "fr", "ja", "ru", "zh", "de", "ko", "hi", "id", "vi", "it", "en"}

// baseLang reduces a BCP-47 code to its language subtag ("pt-BR" → "pt"),
// mapping the aliases the table does not list ("no" → "nb", "tl" → "fil").
func baseLang(code string) string {
	b := strings.ToLower(room.Base(strings.TrimSpace(code)))
	switch b {
	case "no", "nn":
		return "nb"
	case "tl":
		return "fil"
	case "iw":
		return "he"
	case "in":
		return "id"
	}
	return b
}

// ToneHz is the frequency of the sine the fake speaks for a language, so a
// test can tell by a Goertzel filter which language a channel carries. Only
// the language subtag counts ("es-MX" sounds like "es"). Languages outside
// the table hash onto 40 further slots above it; "" is 220 Hz.
func ToneHz(lang string) float64 {
	b := baseLang(lang)
	if b == "" {
		return 220
	}
	for i, l := range languages {
		if l.code == b {
			return 300 + 30*float64(i)
		}
	}
	h := fnv.New32a()
	h.Write([]byte(b))
	return 300 + 30*float64(len(languages)) + 30*float64(h.Sum32()%40)
}

// Tone returns d of PCM16LE mono 24 kHz: a sine at hz with peak amplitude
// amp (0..1 of full scale). The phase starts at zero.
func Tone(hz float64, d time.Duration, amp float64) []byte {
	return toneAt(hz, int(d.Seconds()*SampleRate+0.5), amp, 0)
}

// Speech returns d of the tone of lang at amplitude 0.3: what the fake hears
// as speech in that language and speaks as its translation.
func Speech(lang string, d time.Duration) []byte { return Tone(ToneHz(lang), d, 0.3) }

// Silence returns d of digital silence, PCM16LE mono 24 kHz.
func Silence(d time.Duration) []byte {
	return make([]byte, 2*int(d.Seconds()*SampleRate+0.5))
}

// toneAt renders n samples of a sine, starting at sample offset start so
// consecutive chunks join without a phase jump.
func toneAt(hz float64, n int, amp float64, start int) []byte {
	out := make([]byte, 2*n)
	for i := 0; i < n; i++ {
		v := amp * math.Sin(2*math.Pi*hz*float64(start+i)/SampleRate)
		binary.LittleEndian.PutUint16(out[2*i:], uint16(int16(v*32767)))
	}
	return out
}

// samples decodes PCM16LE into floats in [-1, 1); a trailing odd byte is ignored.
func samples(pcm []byte) []float64 {
	out := make([]float64, len(pcm)/2)
	for i := range out {
		out[i] = float64(int16(binary.LittleEndian.Uint16(pcm[2*i:]))) / 32768
	}
	return out
}

// RMS is the root mean square of PCM16LE audio, 0..1 of full scale.
func RMS(pcm []byte) float64 {
	s := samples(pcm)
	if len(s) == 0 {
		return 0
	}
	var sum float64
	for _, v := range s {
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(s)))
}

// Goertzel returns the share of pcm's energy that lies at hz, 0..1: near 1
// for a pure sine at hz, near 0 for other tones, silence or noise.
func Goertzel(pcm []byte, hz float64) float64 {
	s := samples(pcm)
	n := len(s)
	if n == 0 {
		return 0
	}
	var total float64
	for _, v := range s {
		total += v * v
	}
	if total == 0 {
		return 0
	}
	w := 2 * math.Pi * hz / SampleRate
	coeff := 2 * math.Cos(w)
	var q1, q2 float64
	for _, v := range s {
		q0 := coeff*q1 - q2 + v
		q2, q1 = q1, q0
	}
	power := q1*q1 + q2*q2 - coeff*q1*q2 // |X(hz)|²
	// A sine of amplitude A over n samples gives |X|² ≈ (A·n/2)² and a total
	// energy of A²·n/2, so 2|X|²/(n·total) is ≈ 1 for a pure tone.
	share := 2 * power / (float64(n) * total)
	return min(share, 1)
}

// DetectLanguage names the language among candidates whose tone carries most
// of pcm's energy, or "" when none carries at least half of it.
func DetectLanguage(pcm []byte, candidates []string) string {
	best, bestShare := "", 0.5
	for _, c := range candidates {
		if share := Goertzel(pcm, ToneHz(c)); share > bestShare {
			best, bestShare = c, share
		}
	}
	return best
}

var (
	intoRe = regexp.MustCompile(`(?i)\binto\b`)
	// codeRe finds a code written as a code: in brackets, quotes or
	// backticks, or with a region ("pt-BR"). Bare words are not codes:
	// "it", "no" and "is" are English too.
	codeRe = regexp.MustCompile("[(\\[\"'`]([a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{2,8})*)[)\\]\"'`]|\\b([a-z]{2,3}-[A-Z][a-zA-Z]{1,7})\\b")
)

// languageNames maps lower-case English language names ("spanish",
// "norwegian bokmål", "swahili") to codes: the table's, plus every
// two-letter code x/text can name.
var languageNames = sync.OnceValue(func() map[string]string {
	names := map[string]string{}
	add := func(code string) {
		tag, err := language.Parse(code)
		if err != nil {
			return
		}
		name := strings.ToLower(display.English.Languages().Name(tag))
		if name != "" && name != "unknown language" && names[name] == "" {
			names[name] = baseLang(code)
		}
	}
	for _, l := range languages {
		names[strings.ToLower(l.english)] = l.code
	}
	for a := 'a'; a <= 'z'; a++ {
		for b := 'a'; b <= 'z'; b++ {
			add(string([]rune{a, b}))
		}
	}
	return names
})

var wordRe = regexp.MustCompile(`\p{L}+`)

// DefaultLanguageOf finds the target language of an interpreter's
// instructions: the first language name (English, e.g. "Spanish") or code
// (written "(es)", "\"es\"" or "pt-BR") after the first "into". It returns
// the language subtag, or "" when it finds none.
func DefaultLanguageOf(instructions string) string {
	loc := intoRe.FindStringIndex(instructions)
	if loc == nil {
		return ""
	}
	rest := instructions[loc[1]:]
	names := languageNames()
	bestPos, best := len(rest)+1, ""
	words := wordRe.FindAllStringIndex(rest, -1)
scan:
	for i := range words {
		for n := min(3, len(words)-i); n >= 1; n-- {
			phrase := strings.ToLower(rest[words[i][0]:words[i+n-1][1]])
			if code, ok := names[phrase]; ok {
				bestPos, best = words[i][0], code
				break scan
			}
		}
	}
	for _, m := range codeRe.FindAllStringSubmatchIndex(rest, -1) {
		if m[0] >= bestPos {
			break
		}
		code := ""
		if m[2] >= 0 {
			code = rest[m[2]:m[3]]
		} else {
			code = rest[m[4]:m[5]]
		}
		if _, err := room.ParseLang(code); err == nil {
			return baseLang(code)
		}
	}
	return best
}
