// Package metrics holds babelcast's Prometheus collectors, served at /metrics.
// Every role records into the same registry so one scrape shows a process.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry is the process's registry; cmd serves it at /metrics.
var Registry = prometheus.NewRegistry()

var (
	// Listeners connected to this node, per channel.
	Listeners = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "babelcast_listeners", Help: "Listeners connected to this node, per channel.",
	}, []string{"room", "lang", "transport"})

	// Sessions owned by this node, by translator state.
	Sessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "babelcast_sessions", Help: "Translator sessions on this node, by state.",
	}, []string{"state"})

	// FramesIn counts audio frames received: from speakers (role ingest),
	// from NATS into sessions (translate), from NATS into fan-out (fanout).
	FramesIn = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "babelcast_frames_in_total", Help: "Audio frames received, by role.",
	}, []string{"role"})

	// FramesOut counts audio frames sent: published (ingest, translate) or
	// written to listeners (fanout).
	FramesOut = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "babelcast_frames_out_total", Help: "Audio frames sent, by role.",
	}, []string{"role"})

	// FramesDropped counts frames dropped by a full queue, by role and reason.
	FramesDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "babelcast_frames_dropped_total", Help: "Audio frames dropped, by role and reason.",
	}, []string{"role", "reason"})

	// Errors counts errors by role and kind.
	Errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "babelcast_errors_total", Help: "Errors, by role and kind.",
	}, []string{"role", "kind"})

	// SessionSeconds counts translator session time, the basis of its cost.
	SessionSeconds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "babelcast_session_seconds_total", Help: "Translator session time, by engine and kind.",
	}, []string{"engine", "kind"})
)

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		Listeners, Sessions, FramesIn, FramesOut, FramesDropped, Errors, SessionSeconds,
	)
}
