package local

import (
	"context"
	"strings"
	"testing"

	"github.com/babelcast/babelcast/internal/room"
)

func TestEscapeClean(t *testing.T) {
	in := `a [b] ^c$ d/e <f> @g {h} \i` + "\x00j"
	if got := clean(escape(in)); got != `a [b] ^c$ d/e <f> @g {h} \i j` {
		t.Errorf("clean(escape(%q)) = %q", in, got)
	}
	if got := clean(" #hola *mundo  [NATS]\n"); got != "hola mundo NATS" {
		t.Errorf("clean = %q", got)
	}
}

func TestGlossaryProtect(t *testing.T) {
	g := newGlossary([]room.GlossaryEntry{
		{Term: "NATS"},
		{Term: "NATS JetStream"},
		{Term: "key value", Translations: map[string]string{"es": "clave-valor", "ca": ""}},
	}, "es-419")
	got := g.protect("we use nats jetstream and nats, a key value store; natsy is not nats")
	want := "we use [NATS JetStream] and [NATS], a [clave-valor] store; natsy is not [NATS]"
	if got != want {
		t.Errorf("protect:\n got %s\nwant %s", got, want)
	}
	if got := newGlossary(nil, "es").protect("a [b]"); got != `a \[b\]` {
		t.Errorf("protect without terms = %q", got)
	}
}

// TestTranslatorSpanishAndCatalan runs the real Apertium pairs, several
// lines through one pipeline, and checks the translations.
func TestTranslatorSpanishAndCatalan(t *testing.T) {
	tl := testTools(t)
	ctx := context.Background()
	cases := map[string][]struct{ in, want string }{
		"es": {
			{"he was not an ill disposed young man", "hombre joven"},
			{"he might even have been made amiable himself", "amable"},
			{"good morning everyone welcome to the conference", "conferencia"},
			{"", ""},
		},
		"ca": {
			{"he was not an ill disposed young man", "home jove"},
			{"good morning everyone welcome to the conference", "benvinguda a la conferència"},
		},
	}
	for lang, lines := range cases {
		p, ok := tl.pairs[lang]
		if !ok {
			t.Fatalf("no Apertium pair eng→%s installed (have %v)", lang, tl.pairNames())
		}
		tr := newTranslator(testLog(t), p)
		defer tr.close()
		g := newGlossary([]room.GlossaryEntry{{Term: "NATS"}}, lang)
		for _, l := range lines {
			got, err := tr.translate(ctx, l.in, g)
			if err != nil {
				t.Fatalf("%s: translate %q: %v", lang, l.in, err)
			}
			t.Logf("%s: %q → %q", lang, l.in, got)
			if !strings.Contains(strings.ToLower(got), l.want) || (l.want == "" && got != "") {
				t.Errorf("%s: translate %q = %q, want it to contain %q", lang, l.in, got, l.want)
			}
		}
		got, err := tr.translate(ctx, "the nats server is fast", g)
		if err != nil || !strings.Contains(got, "NATS") {
			t.Errorf("%s: glossary term not kept: %q, %v", lang, got, err)
		}
	}
}

// TestTranslatorRestarts kills the pipeline between lines: the next line
// is translated by a new one.
func TestTranslatorRestarts(t *testing.T) {
	tl := testTools(t)
	tr := newTranslator(testLog(t), tl.pairs["es"])
	defer tr.close()
	ctx := context.Background()
	if _, err := tr.translate(ctx, "good morning", nil); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	first := tr.cmd.Process.Pid
	killGroup(tr.cmd)
	tr.mu.Unlock()
	got, err := tr.translate(ctx, "the conference", nil)
	if err != nil || !strings.Contains(got, "conferencia") {
		t.Fatalf("after kill: %q, %v", got, err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.cmd.Process.Pid == first {
		t.Error("pipeline was not restarted")
	}
}

// The helper processes get none of babelcast's secrets: a pipeline that
// prints the API key and the admin token prints nothing of them.
func TestHelpersGetNoSecrets(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-helper-secret")
	t.Setenv("BABELCAST_ADMIN_TOKEN", "adm_helper_secret")
	tr := newTranslator(testLog(t), pair{Mode: "env-check", Target: "es",
		Pipeline: `printf 'key=%s token=%s locale=%s\0' "$OPENAI_API_KEY" "$BABELCAST_ADMIN_TOKEN" "$LC_ALL"; cat >/dev/null`})
	defer tr.close()
	out, err := tr.translate(context.Background(), "hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "secret") || !strings.Contains(out, "locale=C.UTF-8") {
		t.Errorf("the helper saw %q", out)
	}
}
