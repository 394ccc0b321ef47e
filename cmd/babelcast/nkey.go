package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nkeys"
)

const nkeyUsage = `Usage: babelcast nkey FILE

Makes a NATS NKey user: writes its seed to FILE (readable by you only; give
it to babelcast with --nats-nkey FILE) and prints its public key, for the
users list of the nats-server configuration. FILE must not exist yet.
`

func runNKey(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nkey", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, nkeyUsage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError("one FILE, to write the seed to, is required")
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	seed, err := kp.Seed()
	if err != nil {
		return err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(fs.Arg(0), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: babelcast nkey does not overwrite a key", fs.Arg(0))
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(append(seed, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintln(stdout, pub)
	return nil
}
