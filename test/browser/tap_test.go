package browser

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/test/fakerealtime"
)

// What a page hears. The fake model speaks each language as a tone of its
// own (fakerealtime.ToneHz), so the audio a page receives tells which
// language, or whose voice, it carries. The pages do not expose the audio
// they play, so the tests listen in: tapListeners wraps the page's
// WebSocket so that every listener connection (…/listen?…) keeps a copy
// of the audio it receives, and heard reads it back.

// tapListeners makes the page keep the audio of every listener WebSocket
// it opens from now on, as PCM: it asks the server for PCM where the page
// asked for Opus (the page plays what the hello says). Run it after the
// page loaded and before the press that starts listening.
func tapListeners(tb *tab) {
	tb.t.Helper()
	eval[chromedp.Void](tb, `(() => {
		if (window.__tap) return;
		window.__tap = [];
		const Native = window.WebSocket;
		const limit = 24000 * 2 * 60; // a minute of audio per connection
		window.WebSocket = class extends Native {
			constructor(url, protocols) {
				if (/\/listen\?/.test(String(url))) url = String(url).replace(/([?&])codec=opus/, '$1codec=pcm');
				super(url, protocols);
				if (!/\/(listen\?|booth\/)/.test(String(url))) return; // a booth hears the floor
				const rec = { url: String(url), chunks: [], bytes: 0 };
				window.__tap.push(rec);
				// Registered before the page's handler, so it sees the buffer
				// before the page hands it over to its player.
				this.addEventListener('message', (ev) => {
					if (!(ev.data instanceof ArrayBuffer) || rec.bytes >= limit) return;
					rec.chunks.push(new Uint8Array(ev.data.slice(0)));
					rec.bytes += ev.data.byteLength;
				});
			}
		};
	})()`)
}

// tapBytes is how much audio the page's listener connections whose URL
// has lang=<lang> received.
func tapBytes(tb *tab, lang string) float64 {
	tb.t.Helper()
	return eval[float64](tb, `window.__tap.filter((r) => new URL(r.url).searchParams.get('lang') === `+jsString(lang)+`)
		.reduce((n, r) => n + r.bytes, 0)`)
}

// heard returns the audio (PCM16LE 24 kHz) the page's listener
// connections on lang received, one after the other.
func heard(tb *tab, lang string) []byte {
	tb.t.Helper()
	return heardWhere(tb, `new URL(r.url).searchParams.get('lang') === `+jsString(lang))
}

// heardWhere returns the audio of the tapped connections r for which the
// JavaScript condition cond holds.
func heardWhere(tb *tab, cond string) []byte {
	tb.t.Helper()
	b64 := eval[string](tb, `(() => {
		let s = '';
		for (const r of window.__tap) {
			if (!(`+cond+`)) continue;
			for (const c of r.chunks) for (let i = 0; i < c.length; i += 0x8000) s += String.fromCharCode(...c.subarray(i, i + 0x8000));
		}
		return btoa(s);
	})()`)
	pcm, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		tb.fail("decode the tapped audio: %v", err)
	}
	return pcm
}

// voices counts the 100 ms blocks of pcm by the tone that carries them
// (among the tones of candidates): "" counts the blocks that are none of
// them (a mix, or too short), silence is left out.
func voices(pcm []byte, candidates ...string) map[string]int {
	n := map[string]int{}
	block := audio.DurationBytes(100 * time.Millisecond)
	for off := 0; off+block <= len(pcm); off += block {
		b := pcm[off : off+block]
		if fakerealtime.RMS(b) < 0.005 { // -46 dBFS: silence
			continue
		}
		n[fakerealtime.DetectLanguage(b, candidates)]++
	}
	return n
}

func fmtVoices(n map[string]int) string {
	var parts []string
	for k, v := range n {
		if k == "" {
			k = "other"
		}
		parts = append(parts, fmt.Sprintf("%s %.1f s", k, float64(v)/10))
	}
	return strings.Join(parts, ", ")
}
