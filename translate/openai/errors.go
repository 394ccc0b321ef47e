package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/babelcast/babelcast/translate/engine"
)

// Errors of the Realtime API as engine.Errors: which end a session for good
// (a refused key, no quota, an unknown model), which are worth retrying,
// and messages that never carry the key.

// handshakeError classifies a failed WebSocket handshake.
func (e *Engine) handshakeError(resp *http.Response, err error) error {
	if resp == nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return &engine.Error{Code: "connection_failed", Message: e.scrub("cannot reach the Realtime API: " + err.Error())}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb struct {
		Error apiError `json:"error"`
	}
	_ = json.Unmarshal(body, &eb)
	ae := eb.Error
	retryAfter := parseRetryAfter(resp.Header.Get("Retry-After"))
	msg := e.scrub(ae.Message)
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	msg = fmt.Sprintf("handshake refused with HTTP %d: %s", resp.StatusCode, msg)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || ae.Code == "invalid_api_key":
		return &engine.Error{Code: "invalid_api_key", Message: fmt.Sprintf("the OpenAI API key was refused (HTTP %d)", resp.StatusCode), Permanent: true}
	case ae.Code == "insufficient_quota":
		return &engine.Error{Code: "insufficient_quota", Message: msg, Permanent: true}
	case ae.Code == "model_not_found" || resp.StatusCode == http.StatusNotFound:
		return &engine.Error{Code: "model_not_found", Message: msg, Permanent: true}
	case resp.StatusCode == http.StatusTooManyRequests:
		return &engine.Error{Code: "rate_limited", Message: msg, RetryAfter: retryAfter}
	case resp.StatusCode >= 500:
		return &engine.Error{Code: "server_error", Message: msg, RetryAfter: retryAfter}
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusBadRequest:
		code := ae.Code
		if code == "" {
			code = "refused"
		}
		return &engine.Error{Code: code, Message: msg, Permanent: true}
	default:
		return &engine.Error{Code: "connection_failed", Message: msg, RetryAfter: retryAfter}
	}
}

func parseRetryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

var keyLike = regexp.MustCompile(`sk-[A-Za-z0-9_\-*.]+`)

// scrub removes the API key, and anything shaped like one, from a message
// that came from the server or the network.
func (e *Engine) scrub(s string) string {
	if e.opt.APIKey != "" {
		s = strings.ReplaceAll(s, e.opt.APIKey, "[key]")
	}
	return keyLike.ReplaceAllString(s, "[key]")
}

// classify turns an error event into a *engine.Error when it ends or
// interrupts the connection's work; nil means log it and go on.
func (e *Engine) classify(ae *apiError) *engine.Error {
	if ae == nil {
		return nil
	}
	msg := e.scrub(ae.Message)
	switch ae.Code {
	case "invalid_api_key":
		return &engine.Error{Code: "invalid_api_key", Message: "the OpenAI API key was refused", Permanent: true}
	case "insufficient_quota":
		return &engine.Error{Code: "insufficient_quota", Message: msg, Permanent: true}
	case "model_not_found":
		return &engine.Error{Code: "model_not_found", Message: msg, Permanent: true}
	case "session_expired":
		return &engine.Error{Code: "session_expired", Message: msg}
	case "rate_limit_exceeded", "rate_limited":
		return &engine.Error{Code: "rate_limited", Message: msg}
	case "server_error":
		return &engine.Error{Code: "server_error", Message: msg}
	}
	if ae.Type == "server_error" {
		return &engine.Error{Code: "server_error", Message: msg}
	}
	return nil
}
