package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffyaml"
)

// envPrefix is the prefix of serve's settings in the environment.
const envPrefix = "BABELCAST_"

// otherEnv are the BABELCAST_ variables that are not serve flags but are
// read on purpose: secrets (environment only), the clients' keys, and the
// project's tests' switches.
var otherEnv = []string{"ADMIN_TOKEN", "SPEAKER_KEY", "PASSCODE", "AXE", "CHROMIUM", "SOAK_TALK", "SOAK_SESSION"}

// secretKeys are config-file keys an operator may try for a secret, which
// the file never holds.
var secretKeys = map[string]string{
	"admin-token": "BABELCAST_ADMIN_TOKEN", "admin_token": "BABELCAST_ADMIN_TOKEN",
	"openai-api-key": "OPENAI_API_KEY", "openai_api_key": "OPENAI_API_KEY",
}

// yamlConfig parses serve's YAML file: every key must be one of fs's flags,
// by its flag name (a misspelt key is refused by name rather than ignored;
// a secret is refused with where it goes instead).
func yamlConfig(fs *flag.FlagSet) ff.ConfigFileParser {
	return func(r io.Reader, set func(name, value string) error) error {
		return ffyaml.Parser(r, func(name, value string) error {
			if env, ok := secretKeys[name]; ok {
				return fmt.Errorf("key %q: secrets are not read from the file; set %s in the environment", name, env)
			}
			if fs.Lookup(name) == nil || name == "config" {
				return fmt.Errorf("unknown key %q: the keys are serve's flags without the dashes in front (babelcast help serve)", name)
			}
			return set(name, value)
		})
	}
}

// unknownEnv lists the BABELCAST_ variables of environ that are no
// setting: serve ignores them, so a misspelt one would go unnoticed.
// Names only, never values (a value may be a secret).
func unknownEnv(fs *flag.FlagSet, environ []string) []string {
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(name, envPrefix)
		if !ok || slices.Contains(otherEnv, rest) || strings.HasPrefix(rest, "E2E_") {
			continue
		}
		if fs.Lookup(strings.ToLower(strings.ReplaceAll(rest, "_", "-"))) == nil {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}
