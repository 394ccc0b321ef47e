package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// A client is told what is wrong with its JSON in JSON's words: no Go
// type or package name reaches it.
func TestDescribeJSON(t *testing.T) {
	t.Parallel()
	type lang struct {
		Code string `json:"code"`
	}
	var v struct {
		Rate      int             `json:"sample_rate"`
		Muted     *bool           `json:"muted"`
		Languages []lang          `json:"languages"`
		Glossary  map[string]lang `json:"glossary"`
		Name      string          `json:"name"`
	}
	for body, want := range map[string]string{
		`{"sample_rate":"48000"}`:    "field sample_rate must be a whole number, not string",
		`{"sample_rate":48000.5}`:    "field sample_rate must be a whole number, not number 48000.5",
		`{"muted":"yes"}`:            "field muted must be true or false, not string",
		`{"languages":"es"}`:         "field languages must be an array, not string",
		`{"languages":[{"code":1}]}`: "field languages.code must be a string, not number",
		`{"glossary":[]}`:            "field glossary must be an object, not array",
		`[]`:                         "expected an object, not array",
		`{"name":`:                   "unexpected end of the message",
		`{nope}`:                     "invalid character 'n' looking for beginning of object key string (at byte 2)",
	} {
		got := DescribeJSON(json.Unmarshal([]byte(body), &v))
		if got != want {
			t.Errorf("%s: %q, want %q", body, got, want)
		}
		if strings.Contains(got, "Go ") || strings.Contains(got, "wire.") || strings.Contains(got, "int") && !strings.Contains(got, "invalid") {
			t.Errorf("%s: %q names Go types", body, got)
		}
	}
}
