package room

import (
	"fmt"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// Lang describes a language by its canonical BCP-47 code and its names.
type Lang struct {
	Code    string `json:"code"`
	English string `json:"english"` // "Spanish"
	Native  string `json:"native"`  // "Español"
}

// ParseLang canonicalizes a BCP-47 code ("ES" → "es", "pt-br" → "pt-BR") and
// rejects codes that are malformed or name no language we can display.
func ParseLang(code string) (Lang, error) {
	if code == "" {
		return Lang{}, fmt.Errorf("language code is empty")
	}
	if len(code) > 35 {
		return Lang{}, fmt.Errorf("language code %.35q… is too long", code)
	}
	tag, err := language.Parse(code)
	if err != nil {
		return Lang{}, fmt.Errorf("language %q is not a known BCP-47 code", code)
	}
	native := display.Self.Name(tag)
	english := display.English.Tags().Name(tag)
	if native == "" || english == "" || english == "Unknown language" {
		return Lang{}, fmt.Errorf("language %q is not a known BCP-47 code", code)
	}
	return Lang{
		Code:    tag.String(),
		English: english,
		Native:  cases.Title(tag).String(native),
	}, nil
}

// MustLang is ParseLang for codes known to be valid (tests, tables).
func MustLang(code string) Lang {
	l, err := ParseLang(code)
	if err != nil {
		panic(err)
	}
	return l
}

// Covers reports whether a list of language codes (nil: any language)
// covers code: the code itself or its base language ("pt" covers
// "pt-BR"), in any letter case.
func Covers(list []string, code string) bool {
	if list == nil {
		return true
	}
	base := Base(code)
	for _, l := range list {
		if strings.EqualFold(l, code) || strings.EqualFold(l, base) {
			return true
		}
	}
	return false
}

// Base returns the language part of a code without script or region:
// "pt-BR" → "pt", "zh-Hant" → "zh".
func Base(code string) string {
	tag, err := language.Parse(code)
	if err != nil {
		return code
	}
	b, _ := tag.Base()
	return b.String()
}
