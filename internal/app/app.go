package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/babelcast/babelcast/fanout"
	"github.com/babelcast/babelcast/ingest"
	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/httperr"
	"github.com/babelcast/babelcast/internal/metrics"
	"github.com/babelcast/babelcast/internal/question"
	"github.com/babelcast/babelcast/internal/record"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/translate"
	"github.com/babelcast/babelcast/translate/engine"
	"github.com/babelcast/babelcast/translate/local"
	"github.com/babelcast/babelcast/translate/openai"
	"github.com/babelcast/babelcast/web"
)

// role is what every role package's server offers the process.
type role interface {
	Run(ctx context.Context) error
}

// namedRole is a role the process runs, with its --roles name.
type namedRole struct {
	name string
	r    role
}

// readier is a role that needs a moment after Run starts before the
// process may call itself ready (the translator registering its engine, so
// the API checks languages against it).
type readier interface {
	Ready() <-chan struct{}
}

// HTTP server limits. No request of babelcast needs large headers: a
// bearer token, a subprotocol with a passcode.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	MaxHeaderBytes           = 32 << 10
)

func or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// roleReadyTimeout bounds the wait for roles to say they are ready.
const roleReadyTimeout = 30 * time.Second

// runningRole is a role with the means to stop it.
type runningRole struct {
	name   string
	cancel context.CancelFunc
	done   chan error
}

// App is a running babelcast process.
type App struct {
	cfg      Config
	log      *slog.Logger
	bus      *bus.Bus
	http     *http.Server
	listener net.Listener
	engine   interface{ Close() error } // engines that hold processes

	mu    sync.Mutex
	roles []*runningRole // in stop order
	ready bool

	stopOnce sync.Once
	stopped  chan struct{}
	err      error
}

// Start opens the bus, starts the roles and serves HTTP on cfg.Addr. It
// returns when the process is ready; Shutdown stops it.
func Start(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = AllRoles
	}
	if cfg.Node == "" {
		cfg.Node = defaultNode()
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	log := cfg.Log.With("node", cfg.Node)
	a := &App{cfg: cfg, log: log, stopped: make(chan struct{})}

	b, err := bus.Open(ctx, bus.Options{
		URL: cfg.NATSURL, DataDir: cfg.DataDir, Listen: cfg.NATSListen, Replicas: cfg.Replicas,
		ListenTLSCert: cfg.NATSListenTLSCert, ListenTLSKey: cfg.NATSListenTLSKey,
		Creds: cfg.NATSCreds, NKey: cfg.NATSNKey, TLSCA: cfg.NATSTLSCA, TLSCert: cfg.NATSTLSCert, TLSKey: cfg.NATSTLSKey,
		Name: "babelcast " + cfg.Node, Logger: log, Retention: cfg.Retention,
	})
	if err != nil {
		return nil, err
	}
	a.bus = b
	if b.Embedded() {
		log.Info("NATS", "mode", "embedded", "listener", b.ClientURL(), "replicas", b.Replicas)
	} else {
		log.Info("NATS", "mode", "external", "url", b.ClientURL(), "replicas", b.Replicas)
	}
	rooms := room.NewStore(b.Rooms)
	rec := &record.Store{JS: b.JS, Cues: b.Transcript, Recordings: b.Recordings, Log: log}

	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Use(clientAddress(cfg.TrustedProxies))
	r.Use(accessLog(log))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httperr.NotFound(w, "no such path: "+r.URL.Path)
	})
	r.MethodNotAllowed(methodNotAllowed(r))
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	r.Get("/readyz", a.readyz)
	r.Handle("/metrics", promhttp.HandlerFor(metrics.Registry, promhttp.HandlerOpts{}))

	// Roles in stop order: ingest first (no new audio), then translate
	// (flushes sessions and publishes what they held), then fanout (delivers
	// it and closes listeners), then api.
	var servers []namedRole
	add := func(name string, r role) { servers = append(servers, namedRole{name, r}) }
	fail := func(err error) (*App, error) {
		if a.engine != nil {
			_ = a.engine.Close()
		}
		b.Close()
		return nil, err
	}

	if cfg.has(RoleIngest) {
		s, err := ingest.New(ingest.Options{NC: b.Conn, Rooms: rooms, State: b.State, Questions: question.NewStore(b.Questions), Node: cfg.Node, Log: log.With("role", RoleIngest)})
		if err != nil {
			return fail(fmt.Errorf("ingest: %w", err))
		}
		s.Mount(r)
		add(RoleIngest, s)
	}
	if cfg.has(RoleTranslate) {
		eng, err := a.openEngine()
		if err != nil {
			return fail(err)
		}
		w, err := translate.New(translate.Options{
			NC: b.Conn, Rooms: rooms, State: b.State, Leases: b.Leases, Engine: eng,
			Node: cfg.Node, Log: log.With("role", RoleTranslate), Linger: cfg.Linger, MaxSessions: cfg.MaxSessions,
		})
		if err != nil {
			return fail(fmt.Errorf("translate: %w", err))
		}
		add(RoleTranslate, w)
	}
	if cfg.has(RoleFanout) {
		s, err := fanout.New(fanout.Options{
			NC: b.Conn, Rooms: rooms, State: b.State, Node: cfg.Node, Log: log.With("role", RoleFanout),
			MaxListeners: cfg.MaxListeners, MaxListenersPerAddress: cfg.MaxListenersPerAddress,
			Record: rec, Leases: b.Leases, RecordMaxBytes: cfg.RecordMaxBytes,
		})
		if err != nil {
			return fail(fmt.Errorf("fanout: %w", err))
		}
		s.Mount(r)
		add(RoleFanout, s)
	}
	if cfg.has(RoleAPI) {
		token, fresh, err := adminToken(cfg.AdminToken, cfg.DataDir)
		if err != nil {
			return fail(err)
		}
		if fresh {
			a.announce(fmt.Sprintf("Admin token (shown once; kept in %s): %s", cfg.DataDir+"/"+adminTokenFile, token))
		}
		s, err := web.New(web.Options{Rooms: rooms, Questions: question.NewStore(b.Questions), State: b.State, AdminToken: token, PublicURL: cfg.PublicURL, Log: log.With("role", RoleAPI), Record: rec})
		if err != nil {
			return fail(fmt.Errorf("api: %w", err))
		}
		s.Mount(r)
		web.MountPages(r)
		add(RoleAPI, s)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fail(fmt.Errorf("listen on %s: %w", cfg.Addr, err))
	}
	a.listener = ln
	a.http = &http.Server{
		Handler:           r,
		ReadHeaderTimeout: or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		// Keep-alive connections that idle are closed: each holds a
		// goroutine and buffers. (Listener streams are taken over from
		// net/http and keep their own deadlines.)
		IdleTimeout:    or(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes: MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	for _, s := range servers {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		rr := &runningRole{name: s.name, cancel: cancel, done: make(chan error, 1)}
		go func(r role) { rr.done <- r.Run(rctx) }(s.r)
		a.roles = append(a.roles, rr)
	}
	// Serve nothing before every role is ready: a request that arrives
	// meanwhile waits in the listen backlog rather than, say, creating a
	// room whose languages nobody checked.
	if err := a.awaitRoles(ctx, servers); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ln.Close()
		a.stopRoles(sctx)
		return fail(err)
	}
	go func() {
		if err := a.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "err", err)
			a.stop(err)
		}
	}()
	a.mu.Lock()
	a.ready = true
	a.mu.Unlock()
	log.Info("babelcast is up", "addr", ln.Addr().String(), "roles", cfg.Roles)
	// A role that stops by itself is a failure of the whole process.
	for _, rr := range a.roles {
		go func(rr *runningRole) {
			select {
			case err := <-rr.done:
				rr.done <- err // keep it for Shutdown
				if err != nil {
					log.Error("role stopped", "role", rr.name, "err", err)
					a.stop(fmt.Errorf("role %s: %w", rr.name, err))
				}
			case <-a.stopped:
			}
		}(rr)
	}
	return a, nil
}

func (a *App) openEngine() (engine.Engine, error) {
	name, err := a.cfg.engineName()
	if err != nil {
		return nil, err
	}
	log := a.log.With("role", RoleTranslate, "engine", name)
	switch name {
	case "openai":
		e, err := openai.New(openai.Options{
			APIKey: a.cfg.OpenAIKey, RealtimeURL: a.cfg.RealtimeURL,
			RealtimeModel: a.cfg.RealtimeModel, TranslateModel: a.cfg.TranslateModel, Log: log,
			RotateBefore: a.cfg.RotateBefore,
		})
		if err != nil {
			return nil, fmt.Errorf("openai engine: %w", err)
		}
		log.Info("engine openai", "realtime_url", a.cfg.RealtimeURL)
		return e, nil
	default:
		reason := "OPENAI_API_KEY is not set"
		if a.cfg.Engine == "local" {
			reason = "--engine local"
		}
		e, err := local.New(local.Options{Log: log})
		if err != nil {
			return nil, fmt.Errorf("local engine: %w", err)
		}
		a.engine = e
		log.Info("engine local (offline)", "why", reason)
		return e, nil
	}
}

// Addr is the address the HTTP server listens on.
func (a *App) Addr() string { return a.listener.Addr().String() }

// URL is the base http URL of this process.
func (a *App) URL() string { return "http://" + a.Addr() }

// NATSURL is the client URL of the NATS server this process uses (its
// embedded one's listener, empty without Config.NATSListen; else the
// external server it is connected to): processes started with --nats join
// the same cluster through it.
func (a *App) NATSURL() string { return a.bus.ClientURL() }

// NATSKeyFile is the NKey seed file that other processes give as
// --nats-nkey to join the embedded server's listener; empty without one.
func (a *App) NATSKeyFile() string { return a.bus.ListenerKeyFile() }

// Done is closed when the process has stopped (after Shutdown, or a failure).
func (a *App) Done() <-chan struct{} { return a.stopped }

// Err says why the process stopped by itself, if it did.
func (a *App) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *App) stop(err error) {
	a.stopOnce.Do(func() {
		a.mu.Lock()
		a.err = err
		a.ready = false
		a.mu.Unlock()
		close(a.stopped)
	})
}

// awaitRoles waits until every role that has a Ready channel closes it.
func (a *App) awaitRoles(ctx context.Context, servers []namedRole) error {
	timeout := time.NewTimer(roleReadyTimeout)
	defer timeout.Stop()
	for i, s := range servers {
		rd, ok := s.r.(readier)
		if !ok {
			continue
		}
		rr := a.roles[i]
		select {
		case <-rd.Ready():
		case err := <-rr.done:
			rr.done <- err // keep it for stopRoles
			if err == nil {
				err = errors.New("stopped while starting")
			}
			return fmt.Errorf("%s: %w", s.name, err)
		case <-ctx.Done():
			return fmt.Errorf("%s: not ready: %w", s.name, ctx.Err())
		case <-timeout.C:
			return fmt.Errorf("%s: not ready after %s", s.name, roleReadyTimeout)
		}
	}
	return nil
}

// Shutdown stops the roles in order, each within its share of ctx, then the
// HTTP server and the bus.
func (a *App) Shutdown(ctx context.Context) error {
	a.stop(nil)
	a.log.Info("shutting down")
	a.http.SetKeepAlivesEnabled(false)
	errs := a.stopRoles(ctx)
	if err := a.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http: %w", err))
	}
	if a.engine != nil {
		if err := a.engine.Close(); err != nil {
			errs = append(errs, fmt.Errorf("engine: %w", err))
		}
	}
	a.bus.Close()
	a.log.Info("stopped")
	return errors.Join(errs...)
}

// stopRoles stops the roles in order, each within what is left of ctx.
func (a *App) stopRoles(ctx context.Context) []error {
	var errs []error
	for _, rr := range a.roles {
		rr.cancel()
		select {
		case err := <-rr.done:
			rr.done <- err
			if err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s: %w", rr.name, err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%s: did not stop in time", rr.name))
		}
	}
	return errs
}

func (a *App) readyz(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	ready := a.ready
	a.mu.Unlock()
	natsOK := a.bus.Conn.IsConnected()
	body := map[string]any{"nats": natsOK, "roles": a.cfg.Roles, "node": a.cfg.Node}
	if !ready || !natsOK {
		body["status"] = "not ready"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"] = "ready"
	writeJSON(w, http.StatusOK, body)
}

func (a *App) announce(msg string) {
	if a.cfg.Announce != nil {
		a.cfg.Announce(msg)
		return
	}
	fmt.Fprintln(os.Stdout, msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// accessLog logs each request without its query string: speaker keys and
// passcodes may travel there.
func accessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
				return
			}
			log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", ww.Status(),
				"bytes", ww.BytesWritten(), "duration", time.Since(start).Round(time.Millisecond))
		})
	}
}
