package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/wire"
)

// maxBody is the largest request body the API reads. A room at every limit
// of package room (200 glossary entries with notes and translations) fits.
const maxBody = 256 << 10

// decodeJSON reads r's body strictly into v: JSON content type, at most
// maxBody bytes, exactly one object, no unknown fields. On failure it has
// written the error response and returns false.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		httperr.Write(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"request body must be JSON (Content-Type: application/json)")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httperr.Write(w, http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("request body is larger than %d KiB", maxBody>>10))
			return false
		}
		httperr.BadRequest(w, "could not read the request body")
		return false
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		httperr.BadRequest(w, "request body is empty; expected a JSON object")
		return false
	}
	if trimmed[0] != '{' {
		httperr.BadRequest(w, "request body must be a JSON object")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httperr.BadRequest(w, "malformed JSON: "+wire.DescribeJSON(err))
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		httperr.BadRequest(w, "request body must hold a single JSON object, with nothing after it")
		return false
	}
	return true
}
