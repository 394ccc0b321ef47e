package web

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/babelcast/babelcast/internal/livestate"
	"github.com/babelcast/babelcast/internal/wire"
)

// jsProtocol is static/js/protocol.js as it must be: each JavaScript
// constant, the Go constant it mirrors (by name, for the check that none of
// internal/wire's is missing) and its value.
var jsProtocol = []struct {
	js, goName string
	value      any
}{
	{"SAMPLE_RATE", "SampleRate", wire.SampleRate},
	{"DEFAULT_MIC", "DefaultMic", wire.DefaultMic},
	{"FLOOR", "Floor", wire.Floor},
	{"HEADER_PASSCODE", "HeaderPasscode", wire.HeaderPasscode},
	{"Codec.PCM", "CodecPCM", wire.CodecPCM},
	{"Codec.OPUS", "CodecOpus", wire.CodecOpus},
	{"OPUS_CLOCK_RATE", "OpusClockRate", wire.OpusClockRate},

	{"Msg.START", "TypeStart", wire.TypeStart},
	{"Msg.LANGUAGE", "TypeLanguage", wire.TypeLanguage},
	{"Msg.READY", "TypeReady", wire.TypeReady},
	{"Msg.LEVEL", "TypeLevel", wire.TypeLevel},
	{"Msg.STATUS", "TypeStatus", wire.TypeStatus},
	{"Msg.ERROR", "TypeError", wire.TypeError},
	{"Msg.HELLO", "TypeHello", wire.TypeHello},
	{"Msg.CAPTION", "TypeCaption", wire.TypeCaption},
	{"Msg.STATE", "TypeState", wire.TypeState},
	{"Msg.DELAY", "TypeDelay", wire.TypeDelay},
	{"Msg.EARLIER", "TypeEarlier", wire.TypeEarlier},
	{"Msg.TAKE", "TypeTake", wire.TypeTake},
	{"Msg.HAND_OVER", "TypeHandOver", wire.TypeHandOver},
	{"Msg.MUTE", "TypeMute", wire.TypeMute},
	{"Msg.ON_AIR", "TypeOnAir", wire.TypeOnAir},

	{"Close.NORMAL", "CloseNormal", wire.CloseNormal},
	{"Close.SHUTDOWN", "CloseShutdown", wire.CloseShutdown},
	{"Close.BAD_AUDIO", "CloseBadAudio", wire.CloseBadAudio},
	{"Close.BAD_MESSAGE", "CloseBadMessage", wire.CloseBadMessage},
	{"Close.TOO_LARGE", "CloseTooLarge", wire.CloseTooLarge},
	{"Close.REPLACED", "CloseReplaced", wire.CloseReplaced},
	{"Close.PASSCODE_CHANGED", "ClosePasscodeChanged", wire.ClosePasscodeChanged},
	{"Close.ROOM_GONE", "CloseRoomGone", wire.CloseRoomGone},
	{"Close.TOO_SLOW", "CloseTooSlow", wire.CloseTooSlow},

	{"ErrorCode.BAD_MESSAGE", "CodeBadMessage", wire.CodeBadMessage},
	{"ErrorCode.BAD_SAMPLE_RATE", "CodeBadSampleRate", wire.CodeBadSampleRate},
	{"ErrorCode.BAD_AUDIO", "CodeBadAudio", wire.CodeBadAudio},
	{"ErrorCode.FRAME_TOO_LARGE", "CodeFrameTooLarge", wire.CodeFrameTooLarge},
	{"ErrorCode.REPLACED", "CodeReplaced", wire.CodeReplaced},
	{"ErrorCode.ROOM_DELETED", "CodeRoomDeleted", wire.CodeRoomDeleted},
	{"ErrorCode.BOOTH_REMOVED", "CodeBoothRemoved", wire.CodeBoothRemoved},
	{"ErrorCode.KEY_ROTATED", "CodeKeyRotated", wire.CodeKeyRotated},
	{"ErrorCode.SHUTTING_DOWN", "CodeShuttingDown", wire.CodeShuttingDown},
	{"ErrorCode.BAD_MIC", "CodeBadMic", wire.CodeBadMic},
	{"ErrorCode.BAD_LANGUAGE", "CodeBadLanguage", wire.CodeBadLanguage},
	{"ErrorCode.TOO_MANY_MICS", "CodeTooManyMics", wire.CodeTooManyMics},
	{"ErrorCode.BAD_HEAR", "CodeBadHear", wire.CodeBadHear},

	// The translator states are the state bucket's; wire carries them.
	{"ChannelState.IDLE", "", livestate.StateIdle},
	{"ChannelState.STARTING", "", livestate.StateStarting},
	{"ChannelState.ACTIVE", "", livestate.StateActive},
	{"ChannelState.ERROR", "", livestate.StateError},
}

var (
	jsExport  = regexp.MustCompile(`(?m)^export\s`)
	jsConst   = regexp.MustCompile(`(?m)^export const (\w+) = (\d+|'[^'\\]*');$`)
	jsFrozen  = regexp.MustCompile(`(?ms)^export const (\w+) = Object\.freeze\(\{(.*?)\}\);$`)
	jsEntry   = regexp.MustCompile(`^\s*(\w+):\s*(\d+|'[^'\\]*'),?\s*$`)
	jsComment = regexp.MustCompile(`//.*`)
)

// parseJSConstants reads protocol.js's exports: plain constants as NAME,
// frozen objects' entries as Object.KEY, each with its literal as written.
func parseJSConstants(t *testing.T, src string) map[string]string {
	t.Helper()
	got := map[string]string{}
	add := func(name, lit string) {
		if _, dup := got[name]; dup {
			t.Errorf("protocol.js: %s twice", name)
		}
		got[name] = lit
	}
	exports := 0
	for _, m := range jsConst.FindAllStringSubmatch(src, -1) {
		add(m[1], m[2])
		exports++
	}
	for _, m := range jsFrozen.FindAllStringSubmatch(src, -1) {
		exports++
		for _, line := range strings.Split(m[2], "\n") {
			line = jsComment.ReplaceAllString(line, "")
			if strings.TrimSpace(line) == "" {
				continue
			}
			e := jsEntry.FindStringSubmatch(line)
			if e == nil {
				t.Errorf("protocol.js: %s: cannot read %q (one KEY: number or 'string' a line)", m[1], line)
				continue
			}
			add(m[1]+"."+e[1], e[2])
		}
	}
	if n := len(jsExport.FindAllString(src, -1)); n != exports {
		t.Errorf("protocol.js has %d exports, of which this test reads %d: keep to plain and Object.freeze constants", n, exports)
	}
	return got
}

func jsLiteral(v any) string {
	switch v := v.(type) {
	case string:
		return "'" + v + "'"
	default:
		return fmt.Sprint(v)
	}
}

// The pages' protocol constants are internal/wire's: every one is there,
// with the same value, and none of wire's is missing.
func TestProtocolJSMatchesWire(t *testing.T) {
	t.Parallel()
	b, err := fs.ReadFile(staticFS, "static/js/protocol.js")
	if err != nil {
		t.Fatal(err)
	}
	got := parseJSConstants(t, string(b))
	want := map[string]bool{}
	for _, c := range jsProtocol {
		want[c.js] = true
		lit, ok := got[c.js]
		switch {
		case !ok:
			t.Errorf("protocol.js lacks %s (= %s)", c.js, jsLiteral(c.value))
		case lit != jsLiteral(c.value):
			t.Errorf("protocol.js: %s = %s, the server's is %s", c.js, lit, jsLiteral(c.value))
		}
	}
	for name, lit := range got {
		if !want[name] {
			t.Errorf("protocol.js: %s = %s has no Go counterpart in this test", name, lit)
		}
	}

	// Every exported constant of internal/wire is mirrored.
	mirrored := map[string]bool{}
	for _, c := range jsProtocol {
		mirrored[c.goName] = true
	}
	files, err := filepath.Glob("../internal/wire/*.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				for _, id := range s.(*ast.ValueSpec).Names {
					if !id.IsExported() {
						continue
					}
					n++
					if !mirrored[id.Name] {
						t.Errorf("wire.%s is not in protocol.js (nor in this test)", id.Name)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("found no constants in internal/wire")
	}
}
