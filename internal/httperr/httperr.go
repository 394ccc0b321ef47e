// Package httperr writes the API's error responses:
// {"error":{"code":"…","message":"…"}} with a matching HTTP status.
package httperr

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Body is the JSON shape of an error response.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the error itself.
type Detail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Write sends an error response. code is a short machine-readable word such
// as "not_found", "invalid_request", "unauthorized".
func Write(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(Body{Error: Detail{Code: code, Message: message}})
}

// Common responses.
func NotFound(w http.ResponseWriter, message string) {
	Write(w, http.StatusNotFound, "not_found", message)
}

func BadRequest(w http.ResponseWriter, message string) {
	Write(w, http.StatusBadRequest, "invalid_request", message)
}

func Unauthorized(w http.ResponseWriter, message string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="babelcast"`)
	Write(w, http.StatusUnauthorized, "unauthorized", message)
}

func Forbidden(w http.ResponseWriter, message string) {
	Write(w, http.StatusForbidden, "forbidden", message)
}

// Unavailable is a 503 that asks the client to try again after retry.
func Unavailable(w http.ResponseWriter, retry time.Duration, message string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(retry.Round(time.Second).Seconds()))))
	Write(w, http.StatusServiceUnavailable, "unavailable", message)
}

func Internal(w http.ResponseWriter) {
	Write(w, http.StatusInternalServerError, "internal", "internal error; see the server log")
}
