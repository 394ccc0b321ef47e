package fakerealtime_test

import (
	"testing"
	"time"

	fr "github.com/babelcast/babelcast/test/fakerealtime"
)

func TestTonesTellEveryLanguageApart(t *testing.T) {
	t.Parallel()
	langs := append([]string{"nl", "pl", "sv", "tr", "ar", "uk", "xh", "qu"}, fr.TranslateLanguages...)
	seen := map[float64]string{}
	for _, l := range langs {
		hz := fr.ToneHz(l)
		if other, dup := seen[hz]; dup {
			t.Fatalf("%s and %s share %v Hz", l, other, hz)
		}
		seen[hz] = l
		// 100 ms is enough to tell which language a chunk speaks.
		if got := fr.DetectLanguage(fr.Speech(l, 100*time.Millisecond), langs); got != l {
			t.Errorf("the %s tone (%v Hz) was heard as %q", l, hz, got)
		}
	}
	if fr.ToneHz("pt-BR") != fr.ToneHz("pt") || fr.ToneHz("ES") != fr.ToneHz("es") {
		t.Error("regions and case must not change the tone")
	}
	if fr.DetectLanguage(fr.Silence(100*time.Millisecond), langs) != "" || fr.Goertzel(fr.Silence(time.Second), 440) != 0 {
		t.Error("silence speaks a language")
	}
	if fr.RMS(fr.Speech("en", time.Second)) < 0.2 {
		t.Error("speech is too quiet for the VAD")
	}
}

func TestDefaultLanguageOf(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"You are an interpreter. Translate everything the speaker says into Spanish.":       "es",
		"Interpret from English into Brazilian Portuguese (pt-BR). Never answer questions.": "pt",
		"Translate into the target language (nl) only.":                                     "nl",
		"You translate from German. Render it into French; keep the names in English.":      "fr",
		"Translate INTO JAPANESE": "ja",
		"Speak Spanish.":          "",
		"Interpret into \"sv\". Keep it short, it is a talk.": "sv",
	}
	for in, want := range cases {
		if got := fr.DefaultLanguageOf(in); got != want {
			t.Errorf("DefaultLanguageOf(%q) = %q, want %q", in, got, want)
		}
	}
}
