package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DebianPackages are the Debian packages the local engine runs on: the
// recognizer, its English model, the translator with its English pairs,
// and the synthesizer. scripts/ install them on a fresh machine.
const DebianPackages = "pocketsphinx pocketsphinx-en-us apertium apertium-eng-spa apertium-eng-cat espeak-ng"

// Default locations, as Debian installs them.
const (
	DefaultModelDir    = "/usr/share/pocketsphinx/model/en-us"
	DefaultApertiumDir = "/usr/share/apertium"
)

// pair is an installed Apertium translation direction from English.
type pair struct {
	Mode     string // Apertium mode name, e.g. "eng-spa"
	Target   string // BCP-47 base language, e.g. "es"
	Pipeline string // the mode's shell pipeline in null-flush mode
}

// voice is an espeak-ng voice.
type voice struct {
	Lang     string // lower case, e.g. "es", "es-419"
	Name     string // e.g. "Spanish_(Spain)"
	File     string // e.g. "roa/es": what -v takes
	Priority int    // lower is preferred for its language
}

// tools is what discovery found installed.
type tools struct {
	sphinx        string // pocketsphinx_batch
	hmm, lm, dict string // en-us acoustic model, language model, dictionary
	espeak        string
	pairs         map[string]pair // by target base language
	voices        []voice
	ignoredModes  []string // modes from English we cannot use, with why
}

// missingTool says what is not installed and which Debian package has it.
type missingTool struct{ what, pkg string }

// discover looks for the programs and data the engine needs. It fails only
// when the engine cannot serve any language; what is missing is named with
// its Debian package.
func discover(ctx context.Context, modelDir, apertiumDir string) (*tools, error) {
	t := &tools{pairs: map[string]pair{}}
	var missing []missingTool
	need := func(bin, pkg string) string {
		p, err := exec.LookPath(bin)
		if err != nil {
			missing = append(missing, missingTool{bin, pkg})
			return ""
		}
		return p
	}
	t.sphinx = need("pocketsphinx_batch", "pocketsphinx")
	t.espeak = need("espeak-ng", "espeak-ng")
	need("bash", "bash")
	wblank := need("apertium-wblank-mode", "apertium")

	t.hmm = filepath.Join(modelDir, "en-us")
	t.lm = filepath.Join(modelDir, "en-us.lm.bin")
	t.dict = filepath.Join(modelDir, "cmudict-en-us.dict")
	for _, f := range []string{filepath.Join(t.hmm, "mdef"), t.lm, t.dict} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, missingTool{"PocketSphinx en-us model (" + f + ")", "pocketsphinx-en-us"})
			break
		}
	}

	if wblank != "" {
		if err := t.findPairs(ctx, wblank, filepath.Join(apertiumDir, "modes")); err != nil {
			return nil, err
		}
		if len(t.pairs) == 0 && len(t.ignoredModes) == 0 {
			missing = append(missing, missingTool{"an Apertium pair from English (" + filepath.Join(apertiumDir, "modes") + "/eng-*.mode)", "apertium-eng-spa apertium-eng-cat"})
		}
	}
	if t.espeak != "" {
		v, err := listVoices(ctx, t.espeak)
		if err != nil {
			return nil, err
		}
		t.voices = v
	}

	if len(missing) > 0 {
		var what []string
		for _, m := range missing {
			what = append(what, fmt.Sprintf("%s (Debian package %s)", m.what, m.pkg))
		}
		return nil, fmt.Errorf("missing %s; install them with: apt-get install %s",
			strings.Join(what, ", "), DebianPackages)
	}
	if len(t.targets()) == 0 {
		return nil, fmt.Errorf("no target language has both an Apertium pair from English (%s) and an espeak-ng voice; install them with: apt-get install %s",
			strings.Join(t.pairNames(), ", "), DebianPackages)
	}
	return t, nil
}

// findPairs reads the installed Apertium modes from English. Variants
// (eng-cat_valencia) are left out: a channel names a language, not a
// dialect setting.
func (t *tools) findPairs(ctx context.Context, wblank, modesDir string) error {
	entries, err := os.ReadDir(modesDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read Apertium modes: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".mode")
		if !ok || strings.Contains(name, "_") {
			continue
		}
		src, tgt, ok := strings.Cut(name, "-")
		if !ok || (src != "eng" && src != "en") || strings.Contains(tgt, "-") {
			continue
		}
		lang := bcp47(tgt)
		if _, dup := t.pairs[lang]; dup {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cmd := exec.CommandContext(cctx, wblank, "-z", filepath.Join(modesDir, e.Name()))
		cmd.Env = childEnv(os.Environ())
		out, err := cmd.Output()
		cancel()
		if err != nil {
			t.ignoredModes = append(t.ignoredModes, name+": apertium-wblank-mode failed: "+err.Error())
			continue
		}
		pipeline := strings.TrimSpace(string(out))
		if bin := missingStage(pipeline); bin != "" {
			t.ignoredModes = append(t.ignoredModes, fmt.Sprintf("%s: its pipeline needs %s, which is not installed", name, bin))
			continue
		}
		t.pairs[lang] = pair{Mode: name, Target: lang, Pipeline: pipeline}
	}
	return nil
}

// missingStage returns the first program of a mode pipeline that is not
// installed, or "".
func missingStage(pipeline string) string {
	for _, stage := range strings.Split(pipeline, "|") {
		f := strings.Fields(stage)
		if len(f) == 0 {
			continue
		}
		if _, err := exec.LookPath(strings.Trim(f[0], "'\"")); err != nil {
			return f[0]
		}
	}
	return ""
}

// listVoices parses `espeak-ng --voices`. MBROLA voices are left out: they
// need the mbrola program and a voice database, rarely installed.
func listVoices(ctx context.Context, espeak string) ([]voice, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, espeak, "--voices")
	cmd.Env = childEnv(os.Environ())
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("espeak-ng --voices: %w", err)
	}
	var vs []voice
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] == "Pty" {
			continue
		}
		pty, err := strconv.Atoi(f[0])
		if err != nil || strings.HasPrefix(f[4], "mb/") {
			continue
		}
		vs = append(vs, voice{Lang: strings.ToLower(f[1]), Name: f[3], File: f[4], Priority: pty})
	}
	return vs, nil
}

// voiceFor picks the espeak-ng voice for a target language: the one asked
// for when it speaks that language, else the preferred voice of the exact
// language (es-419), else of its base language (es), else of a regional
// variant (pt-br for pt). ok is false when none speaks it.
func (t *tools) voiceFor(target, asked string) (v voice, ok bool) {
	target = strings.ToLower(target)
	base := baseLang(target)
	if asked != "" {
		a := strings.ToLower(asked)
		for _, c := range t.voices {
			if baseLang(c.Lang) == base && (strings.ToLower(c.Name) == a || strings.ToLower(c.File) == a ||
				strings.ToLower(filepath.Base(c.File)) == a) {
				return c, true
			}
		}
	}
	for _, match := range []func(string) bool{
		func(l string) bool { return l == target },
		func(l string) bool { return l == base },
		func(l string) bool { return strings.HasPrefix(l, base+"-") },
	} {
		best := -1
		for i, c := range t.voices {
			if match(c.Lang) && (best < 0 || c.Priority < t.voices[best].Priority) {
				best = i
			}
		}
		if best >= 0 {
			return t.voices[best], true
		}
	}
	return voice{}, false
}

// targets are the base languages with both a pair and a voice, sorted.
func (t *tools) targets() []string {
	var out []string
	for lang := range t.pairs {
		if _, ok := t.voiceFor(lang, ""); ok {
			out = append(out, lang)
		}
	}
	sort.Strings(out)
	return out
}

func (t *tools) pairNames() []string {
	var out []string
	for _, p := range t.pairs {
		out = append(out, p.Mode)
	}
	sort.Strings(out)
	return out
}

// baseLang is the language subtag of a BCP-47 code: "es" for "es-419".
func baseLang(code string) string {
	code = strings.ToLower(strings.ReplaceAll(code, "_", "-"))
	b, _, _ := strings.Cut(code, "-")
	return b
}

// bcp47 turns an Apertium language code (ISO 639-3, or 639-1 in old pairs)
// into the BCP-47 code babelcast uses: the two-letter code where one exists.
func bcp47(code string) string {
	if c, ok := iso639_3to1[code]; ok {
		return c
	}
	return code
}

var iso639_3to1 = map[string]string{
	"afr": "af", "ara": "ar", "arg": "an", "aze": "az", "bel": "be", "bos": "bs", "bre": "br",
	"bul": "bg", "cat": "ca", "ces": "cs", "cor": "kw", "cym": "cy", "dan": "da", "deu": "de",
	"ell": "el", "eng": "en", "epo": "eo", "est": "et", "eus": "eu", "fas": "fa", "fin": "fi",
	"fra": "fr", "gla": "gd", "gle": "ga", "glg": "gl", "glv": "gv", "hbs": "sh", "heb": "he",
	"hin": "hi", "hrv": "hr", "hun": "hu", "hye": "hy", "ind": "id", "isl": "is", "ita": "it",
	"jpn": "ja", "kat": "ka", "kaz": "kk", "kir": "ky", "kor": "ko", "lav": "lv", "lit": "lt",
	"mkd": "mk", "mlt": "mt", "msa": "ms", "nld": "nl", "nno": "nn", "nob": "nb", "oci": "oc",
	"pol": "pl", "por": "pt", "ron": "ro", "rus": "ru", "slk": "sk", "slv": "sl", "spa": "es",
	"sqi": "sq", "srp": "sr", "swa": "sw", "swe": "sv", "tat": "tt", "tgk": "tg", "tha": "th",
	"tur": "tr", "ukr": "uk", "urd": "ur", "uzb": "uz", "vie": "vi", "xho": "xh", "zho": "zh",
	"zul": "zu",
}
