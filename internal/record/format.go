package record

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Formats of a transcript, and their content types.
var Formats = map[string]string{
	"json": "application/json; charset=utf-8",
	"vtt":  "text/vtt; charset=utf-8",
	"srt":  "application/x-subrip; charset=utf-8",
	"txt":  "text/plain; charset=utf-8",
}

// Transcript is a channel's transcript as JSON.
type Transcript struct {
	Room string    `json:"room"`
	Lang string    `json:"lang"`
	Cues []jsonCue `json:"cues"`
}

type jsonCue struct {
	Start          string `json:"start"`
	End            string `json:"end"`
	Text           string `json:"text"`
	Speaker        string `json:"speaker"`
	SourceLanguage string `json:"source_language,omitempty"`
}

// Format renders cues in format (a key of Formats). VTT and SRT times
// count from zero, the start of the room's record; JSON has RFC 3339
// times; TXT is one line a cue, with its speaker.
func Format(room, lang string, cues []Cue, zero time.Time, format string) ([]byte, error) {
	var b strings.Builder
	switch format {
	case "json":
		t := Transcript{Room: room, Lang: lang, Cues: make([]jsonCue, len(cues))}
		for i, c := range cues {
			t.Cues[i] = jsonCue{Start: c.Start.UTC().Format(time.RFC3339Nano), End: c.End.UTC().Format(time.RFC3339Nano),
				Text: c.Text, Speaker: c.Speaker, SourceLanguage: c.SourceLanguage}
		}
		return json.Marshal(t)
	case "vtt":
		b.WriteString("WEBVTT\n")
		for _, c := range cues {
			fmt.Fprintf(&b, "\n%s --> %s\n%s\n", stamp(c.Start.Sub(zero), '.'), stamp(c.End.Sub(zero), '.'), vttText(c))
		}
	case "srt":
		for i, c := range cues {
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "%d\n%s --> %s\n%s\n", i+1, stamp(c.Start.Sub(zero), ','), stamp(c.End.Sub(zero), ','), plainText(c))
		}
	case "txt":
		for _, c := range cues {
			b.WriteString(plainText(c) + "\n")
		}
	default:
		return nil, fmt.Errorf("unknown format %q", format)
	}
	return []byte(b.String()), nil
}

// stamp is hh:mm:ss.mmm (sep ',' for SRT); negative times are 0.
func stamp(d time.Duration, sep byte) string {
	d = max(d, 0)
	ms := d.Milliseconds()
	return fmt.Sprintf("%02d:%02d:%02d%c%03d", ms/3600000, ms/60000%60, ms/1000%60, sep, ms%1000)
}

// oneLine keeps a cue's text on one line: a blank line would end it.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func plainText(c Cue) string {
	if c.Speaker != "" {
		return oneLine(c.Speaker) + ": " + oneLine(c.Text)
	}
	return oneLine(c.Text)
}

// vttText names the speaker with a voice span; "-->" may not appear in a
// cue's text, and "<" and "&" are escaped.
func vttText(c Cue) string {
	esc := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	text := esc.Replace(oneLine(c.Text))
	if c.Speaker != "" {
		return "<v " + esc.Replace(oneLine(c.Speaker)) + ">" + text
	}
	return text
}
