package app

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/babelcast/babelcast/internal/httperr"
)

// routeMethods are the methods a 405's Allow header may name.
var routeMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// methodNotAllowed answers a request whose path is routed but not for its
// method: 405 with the API's error body and the Allow header HTTP requires
// (RFC 9110 §15.5.6), naming the methods the path takes. chi's own 405
// handler sets Allow, but a custom one (for the error body) must do it
// itself.
func methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range routeMethods {
			if routes.Match(chi.NewRouteContext(), m, r.URL.Path) {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
		}
		httperr.Write(w, http.StatusMethodNotAllowed, "method_not_allowed",
			r.Method+" is not allowed on "+r.URL.Path)
	}
}
