package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/babelcast/babelcast/internal/audio"
	"github.com/babelcast/babelcast/internal/client"
)

const speakUsage = `Usage: babelcast speak --server URL --room ID --key KEY [--mic ID --name NAME --language CODE] FILE|-

Streams FILE to a room as one of its mics, at real-time pace: an .mp3, a
.wav of any common rate and channel count (downmixed and resampled to 24 kHz
mono), or - for raw PCM16LE mono on stdin at --rate. It goes as Opus
(32 kbit/s) unless --codec pcm. The key may also come
from BABELCAST_SPEAKER_KEY. Several mics may speak at once (a panel); a mic
id already live is taken over.

Flags:
`

// clientFlags starts the flags of a client command (speak, listen): its
// usage, and the --server and --room every client takes.
func clientFlags(name, usage string, stderr io.Writer) (fs *flag.FlagSet, server, roomID *string) {
	fs = flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	server = fs.String("server", "http://localhost:8080", "babelcast server base URL")
	roomID = fs.String("room", "", "room id")
	return fs, server, roomID
}

func runSpeak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, server, roomID := clientFlags("speak", speakUsage, stderr)
	key := fs.String("key", os.Getenv("BABELCAST_SPEAKER_KEY"), "the room's speaker key")
	rate := fs.Int("rate", audio.Rate, "sample rate of raw PCM on stdin (with -)")
	mic := fs.String("mic", "main", "which mic of the room this is (1-32 of a-z, 0-9, -)")
	name := fs.String("name", "", "who speaks, shown with the captions")
	language := fs.String("language", "", "the language spoken (default: the room's source language)")
	codec := fs.String("codec", "opus", "what goes on the wire: opus (32 kbit/s) or pcm (384 kbit/s, lossless)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *roomID == "" || *key == "" || fs.NArg() != 1 {
		fs.Usage()
		return usageError("--room, --key and one FILE (or -) are required")
	}
	var src *audio.Source
	var err error
	if name := fs.Arg(0); name == "-" {
		src, err = audio.NewRawSource(os.Stdin, *rate)
	} else {
		src, err = audio.Open(name)
	}
	if err != nil {
		return err
	}
	defer src.Close()
	err = client.Speak(ctx, client.SpeakOptions{
		Server: *server, Room: *roomID, Key: *key, Source: src, Log: stderr, Realtime: true,
		Mic: *mic, Name: *name, Language: *language, Codec: *codec,
	})
	if errors.Is(err, context.Canceled) {
		return nil // interrupted by the user: a normal stop
	}
	return err
}

const listenUsage = `Usage: babelcast listen --server URL --room ID --lang CODE --out FILE.ogg|FILE.wav

Records a room's channel until interrupted, --duration passes, or the server
ends the stream: FILE.ogg as Ogg/Opus (what the server sends, any player
plays it), FILE.wav as PCM16 mono 24 kHz. Either keeps the channel's
timing (silence where nobody spoke), so it lines up with the talk; dropped
connections are retried. --lang floor records the floor itself (every mic, untranslated);
--passthrough=false only the interpretations, never the original.

Flags:
`

func runListen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, server, roomID := clientFlags("listen", listenUsage, stderr)
	lang := fs.String("lang", "", "language code of the channel")
	out := fs.String("out", "", "file to write: .ogg (Ogg/Opus) or .wav (PCM)")
	captions := fs.String("captions", "", "file to write final captions to, one a line (- for stdout)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	passcode := fs.String("passcode", os.Getenv("BABELCAST_PASSCODE"), "the room's listener passcode, if it has one")
	passthrough := fs.Bool("passthrough", true, "hear the original while the floor speaks the channel's language")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *roomID == "" || *lang == "" || *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return usageError("--room, --lang and --out are required")
	}
	opts := client.ListenOptions{
		Server: *server, Room: *roomID, Lang: *lang, Passcode: *passcode,
		OutPath: *out, Duration: *duration, Log: stderr, NoPassthrough: !*passthrough,
	}
	switch *captions {
	case "":
	case "-":
		opts.Captions = stdout
	default:
		f, err := os.Create(*captions)
		if err != nil {
			return err
		}
		defer f.Close()
		opts.Captions = f
	}
	return client.Listen(ctx, opts)
}
