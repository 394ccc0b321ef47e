package room

import (
	"errors"
	"strings"
	"testing"
)

func valid() Room {
	return Room{
		ID: "keynote", Name: " Keynote ", SourceLanguage: "EN",
		Languages: []Language{{Code: "es"}, {Code: "pt-br", Voice: "marin", Mode: "interpret"}},
		Glossary:  []GlossaryEntry{{Term: "NATS", Note: "product name, keep"}},
	}
}

func TestNormalizeCanonicalizesAndFillsDefaults(t *testing.T) {
	r := valid()
	if err := r.Normalize(); err != nil {
		t.Fatal(err)
	}
	if r.Name != "Keynote" || r.SourceLanguage != "en" {
		t.Errorf("name %q source %q", r.Name, r.SourceLanguage)
	}
	if r.Languages[0].Mode != ModeAuto || r.Languages[1].Code != "pt-BR" {
		t.Errorf("languages %+v", r.Languages)
	}
}

func TestNormalizeRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*Room)
		field  string
	}{
		"bad id":           {func(r *Room) { r.ID = "Key Note" }, "id"},
		"dot in id":        {func(r *Room) { r.ID = "a.b" }, "id"},
		"no source":        {func(r *Room) { r.SourceLanguage = "" }, "source_language"},
		"unknown lang":     {func(r *Room) { r.Languages[0].Code = "xx" }, "languages[0].code"},
		"klingon":          {func(r *Room) { r.Languages[0].Code = "tlh" }, "languages[0].code"},
		"source as target": {func(r *Room) { r.Languages[0].Code = "en" }, "languages[0].code"},
		"duplicate":        {func(r *Room) { r.Languages[1].Code = "ES" }, "languages[1].code"},
		"voice":            {func(r *Room) { r.Languages[0].Voice = "darth" }, "languages[0].voice"},
		"mode":             {func(r *Room) { r.Languages[0].Mode = "fast" }, "languages[0].mode"},
		"empty term":       {func(r *Room) { r.Glossary[0].Term = " " }, "glossary[0].term"},
		"long name":        {func(r *Room) { r.Name = strings.Repeat("x", MaxNameLen+1) }, "name"},
		"too many": {func(r *Room) {
			r.Languages = nil
			for _, c := range []string{"es", "fr", "de", "it", "nl", "pt", "ja", "ko", "zh", "ru", "ar", "hi", "sv", "da", "fi", "pl", "cs", "tr", "el", "he", "id", "vi", "th", "uk", "ro"} {
				r.Languages = append(r.Languages, Language{Code: c})
			}
		}, "languages"},
	} {
		t.Run(name, func(t *testing.T) {
			r := valid()
			tc.mutate(&r)
			err := r.Normalize()
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("got %v, want a ValidationError on %s", err, tc.field)
			}
		})
	}
}

func TestParseLangNames(t *testing.T) {
	for code, want := range map[string]Lang{
		"es":      {Code: "es", English: "Spanish", Native: "Español"},
		"ja":      {Code: "ja", English: "Japanese", Native: "日本語"},
		"zh-hant": {Code: "zh-Hant", English: "Traditional Chinese", Native: "繁體中文"},
	} {
		got, err := ParseLang(code)
		if err != nil || got != want {
			t.Errorf("ParseLang(%q) = %+v, %v; want %+v", code, got, err, want)
		}
	}
	if Base("pt-BR") != "pt" || Base("zh-Hant") != "zh" {
		t.Error("Base drops script and region")
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Keynote: Día 1":   "keynote-dia-1",
		"  --Hello__World": "hello-world",
		"日本語":              "",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
		if got := Slug(in); got != "" && ValidID(got) != nil {
			t.Errorf("Slug(%q) = %q is not a valid id", in, got)
		}
	}
}

func TestSecretsCheckedAndHidden(t *testing.T) {
	r := valid()
	r.SpeakerKey = NewSpeakerKey()
	r.Passcode = "1234"
	if !r.CheckSpeakerKey(r.SpeakerKey) || r.CheckSpeakerKey("") || r.CheckSpeakerKey(r.SpeakerKey+"x") {
		t.Error("speaker key check")
	}
	if !r.CheckPasscode("1234") || r.CheckPasscode("") {
		t.Error("passcode check")
	}
	if NewSpeakerKey() == r.SpeakerKey {
		t.Error("speaker keys repeat")
	}
	p := r.Public()
	if !p.Passcode || len(p.Languages) != 2 || p.SourceLanguage.Native != "English" {
		t.Errorf("public %+v", p)
	}
}

func TestBoothKeys(t *testing.T) {
	r := valid()
	r.Languages = []Language{{Code: "es", Booth: true, BoothKey: "bth_es"}, {Code: "fr", Booth: true, BoothKey: "bth_fr"}, {Code: "de"}}
	if !r.CheckBoothKey("es", "bth_es") || r.CheckBoothKey("es", "bth_fr") || r.CheckBoothKey("de", "") || r.CheckBoothKey("es", "") {
		t.Error("booth key check")
	}
	if !r.HoldsBoothKey("bth_fr") || r.HoldsBoothKey("bth_x") || r.HoldsBoothKey("") {
		t.Error("HoldsBoothKey: true for the key of any of the room's booths, false otherwise")
	}
}
