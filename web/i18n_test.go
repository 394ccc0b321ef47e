package web

import (
	"encoding/json"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// The attendee pages' message catalogs (static/i18n/<lang>.json, read by
// static/js/i18n.js): en.json is the reference, and must say exactly what
// the pages and modules say in English; every other catalog has every key,
// keeps every {placeholder}, and leaves no English sentence behind.

var (
	// localizeCall finds a module's localize('ns', { … }) messages.
	localizeCall = regexp.MustCompile(`(?s)localize\('(\w+)', \{\n(.*?)\n\}\);`)
	// messageLine is one message in it: `  key: 'text',`.
	messageLine = regexp.MustCompile(`^\s*(\w+): '((?:[^'\\]|\\.)*)',?$`)
	// i18nText is an element whose text a key replaces.
	i18nText = regexp.MustCompile(`data-i18n="([^"]+)"[^>]*>([^<]*)<`)
	// i18nAttr is an element whose attributes keys replace.
	i18nAttr    = regexp.MustCompile(`<[^>]*data-i18n-attr="([^"]+)"[^>]*>`)
	placeholder = regexp.MustCompile(`\{\w+\}`)
	catalogList = regexp.MustCompile(`export const CATALOGS = \[([^\]]*)\]`)
	space       = regexp.MustCompile(`\s+`)
	// roomCode is an example room code, Latin in every language.
	roomCode = regexp.MustCompile(`^[a-z0-9-]+$`)
)

func readCatalog(t *testing.T, lang string) map[string]string {
	t.Helper()
	b, err := fs.ReadFile(staticFS, "static/i18n/"+lang+".json")
	if err != nil {
		t.Fatalf("catalog %s: %v", lang, err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("catalog %s is not a flat JSON object of strings: %v", lang, err)
	}
	return m
}

// englishInCode collects the English messages the pages carry: the
// modules' localize() objects and the HTML's data-i18n texts and
// attributes, with where each was found.
func englishInCode(t *testing.T) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	add := func(key, value, where string) {
		found[key] = append(found[key], value+"\x00"+where)
	}
	js, _ := fs.Glob(staticFS, "static/js/*.js")
	for _, f := range js {
		b, _ := fs.ReadFile(staticFS, f)
		for _, m := range localizeCall.FindAllStringSubmatch(string(b), -1) {
			for _, line := range strings.Split(m[2], "\n") {
				if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "//") {
					continue
				}
				lm := messageLine.FindStringSubmatch(line)
				if lm == nil {
					t.Errorf("%s: cannot read message line %q (one `key: 'text',` a line)", f, line)
					continue
				}
				add(m[1]+"."+lm[1], strings.ReplaceAll(lm[2], `\'`, `'`), f)
			}
		}
	}
	pages, _ := fs.Glob(pagesFS, "pages/*.html")
	for _, f := range pages {
		b, _ := fs.ReadFile(pagesFS, f)
		s := string(b)
		for _, m := range i18nText.FindAllStringSubmatch(s, -1) {
			add(m[1], strings.TrimSpace(space.ReplaceAllString(m[2], " ")), f)
		}
		for _, m := range i18nAttr.FindAllStringSubmatch(s, -1) {
			for _, pair := range strings.Split(m[1], ",") {
				attr, key, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok {
					t.Errorf("%s: data-i18n-attr %q: want attr=key pairs", f, m[1])
					continue
				}
				v := regexp.MustCompile(`\s` + regexp.QuoteMeta(attr) + `="([^"]*)"`).FindStringSubmatch(m[0])
				if v == nil {
					t.Errorf("%s: data-i18n-attr names %s, which the element lacks", f, attr)
					continue
				}
				add(key, strings.TrimSpace(space.ReplaceAllString(v[1], " ")), f)
			}
		}
	}
	return found
}

func TestCatalogsMatchTheEnglishPages(t *testing.T) {
	t.Parallel()
	en := readCatalog(t, "en")
	code := englishInCode(t)
	if len(code) < 100 {
		t.Fatalf("found only %d messages in the pages: the test's patterns no longer match them", len(code))
	}
	for key, uses := range code {
		want, ok := en[key]
		if !ok {
			t.Errorf("%s (%s) is missing from en.json", key, strings.Split(uses[0], "\x00")[1])
			continue
		}
		for _, u := range uses {
			got, where, _ := strings.Cut(u, "\x00")
			if got != want {
				t.Errorf("%s: %s says %q, en.json %q", key, where, got, want)
			}
		}
	}
	for key := range en {
		if _, ok := code[key]; !ok {
			t.Errorf("en.json has %s, which no page or module uses", key)
		}
	}
}

// nonLatin are the catalogs in a script other than Latin: a message there
// with letters and none outside ASCII is English left behind.
var nonLatin = map[string]bool{"ar": true, "hi": true, "ja": true, "ko": true, "ru": true, "zh": true}

func TestCatalogsAreComplete(t *testing.T) {
	t.Parallel()
	files, err := fs.Glob(staticFS, "static/i18n/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var langs []string
	for _, f := range files {
		langs = append(langs, strings.TrimSuffix(path.Base(f), ".json"))
	}
	sort.Strings(langs)

	// i18n.js offers exactly the catalogs there are.
	js, _ := fs.ReadFile(staticFS, "static/js/i18n.js")
	m := catalogList.FindSubmatch(js)
	if m == nil {
		t.Fatal("i18n.js has no CATALOGS list")
	}
	var listed []string
	for _, s := range strings.Split(string(m[1]), ",") {
		listed = append(listed, strings.Trim(strings.TrimSpace(s), "'"))
	}
	sort.Strings(listed)
	if !slices.Equal(listed, langs) {
		t.Errorf("i18n.js CATALOGS %v, catalog files %v", listed, langs)
	}
	for _, want := range []string{"ar", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "pt", "ru", "vi", "zh"} {
		if !slices.Contains(langs, want) {
			t.Errorf("no catalog for %s", want)
		}
	}

	en := readCatalog(t, "en")
	for _, lang := range langs {
		if lang == "en" {
			continue
		}
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			cat := readCatalog(t, lang)
			for key, source := range en {
				got, ok := cat[key]
				switch {
				case !ok:
					t.Errorf("%s is missing", key)
					continue
				case strings.TrimSpace(got) == "":
					t.Errorf("%s is empty", key)
					continue
				}
				if a, b := placeholders(source), placeholders(got); !slices.Equal(a, b) {
					t.Errorf("%s: placeholders %v, English has %v: %q", key, b, a, got)
				}
				// A sentence the same as in English was not translated (a
				// single word may be the same: "Volume", "Pause").
				if got == source && len(strings.Fields(placeholder.ReplaceAllString(source, ""))) > 1 {
					t.Errorf("%s is still English: %q", key, got)
				}
				if nonLatin[lang] && hasLetters(got) && isASCII(placeholder.ReplaceAllString(got, "")) && !roomCode.MatchString(got) {
					t.Errorf("%s is in Latin letters only, not %s: %q", key, lang, got)
				}
			}
			for key := range cat {
				if _, ok := en[key]; !ok {
					t.Errorf("%s is not in en.json (a page no longer uses it?)", key)
				}
			}
		})
	}
}

func placeholders(s string) []string {
	p := placeholder.FindAllString(s, -1)
	sort.Strings(p)
	return p
}

func hasLetters(s string) bool {
	return strings.IndexFunc(placeholder.ReplaceAllString(s, ""), unicode.IsLetter) >= 0
}

func isASCII(s string) bool {
	for _, r := range s {
		if r > unicode.MaxASCII {
			return false
		}
	}
	return true
}
