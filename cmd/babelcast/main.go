// Command babelcast is the live speech-translation broadcast service: one
// binary whose subcommands run the service (serve), stream a speaker (speak)
// and record a channel (listen).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `babelcast — live speech translation for talks and conferences

Usage:
  babelcast serve  [flags]             run the service (all roles, embedded NATS by default)
  babelcast speak  [flags] FILE|-      stream an .mp3, a .wav or raw PCM (-) as a room's speaker
  babelcast listen [flags]             record a room's channel to an .ogg or .wav file
  babelcast nkey FILE                  make a NATS NKey user for --nats-nkey (prints its public key)
  babelcast version                    print the version
  babelcast help [COMMAND]             explain a command and its flags

Run 'babelcast help serve' (or speak, listen) for the flags of each command.
Every serve flag can also be set as an environment variable BABELCAST_<FLAG>
(e.g. BABELCAST_ADDR, BABELCAST_REALTIME_URL) or in a YAML file (--config).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, rest, stdout, stderr)
	case "speak":
		err = runSpeak(ctx, rest, stdout, stderr)
	case "listen":
		err = runListen(ctx, rest, stdout, stderr)
	case "nkey":
		err = runNKey(ctx, rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "babelcast", version)
	case "help", "-h", "--help":
		if len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return 0
		}
		return run(ctx, []string{rest[0], "-h"}, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "babelcast: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "babelcast "+cmd+":", err)
		return 2
	default:
		fmt.Fprintln(stderr, "babelcast "+cmd+":", err)
		return 1
	}
}

// usageError is a command line the usage text (already shown) explains;
// its message says what is wrong with it.
type usageError string

func (e usageError) Error() string { return string(e) }
