// Package natscluster runs a real NATS cluster for tests: nats-server
// processes (built from the nats-server module this repository depends
// on) with JetStream, clustered over routes on loopback ports. A test can
// kill a server as kill -9 does and start it again on the same store, and
// ask which server leads a stream.
package natscluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/test/harness/logs"
)

// Cluster is a running cluster of nats-server processes.
type Cluster struct {
	t       testing.TB
	Servers []*Server
}

// Server is one nats-server process of a Cluster.
type Server struct {
	Name  string
	Port  int // client port
	http  int // monitoring port
	c     *Cluster
	conf  string
	store string
	logs  *logs.Sink

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Options shape a cluster.
type Options struct {
	// Servers is how many; default 3.
	Servers int
	// Auth is configuration added to every server (an authorization block).
	Auth string
	// NoWait returns as soon as the processes are started, before they
	// have formed the cluster (AwaitReady waits for that).
	NoWait bool
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds nats-server once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "natscluster-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// Start runs a cluster and waits until every server is ready and JetStream
// has a meta leader. The processes are killed when the test ends.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Servers <= 0 {
		o.Servers = 3
	}
	bin := Binary(t)
	c := &Cluster{t: t}
	dir := t.TempDir()
	ports := freePorts(t, 3*o.Servers)
	var routes []string
	for i := 0; i < o.Servers; i++ {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[o.Servers+i]))
	}
	for i := 0; i < o.Servers; i++ {
		name := fmt.Sprintf("n%d", i+1)
		s := &Server{Name: name, Port: ports[i], http: ports[2*o.Servers+i], c: c, store: filepath.Join(dir, name), logs: &logs.Sink{}}
		s.conf = filepath.Join(dir, name+".conf")
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: babelcast-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
%s
`, name, ports[i], s.http, s.store, ports[o.Servers+i], strings.Join(routes, ", "), o.Auth)
		if err := os.WriteFile(s.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Servers = append(c.Servers, s)
	}
	for _, s := range c.Servers {
		s.start(bin)
	}
	t.Cleanup(func() {
		for _, s := range c.Servers {
			s.Kill()
		}
		if t.Failed() {
			for _, s := range c.Servers {
				t.Logf("nats-server %s log:\n%s", s.Name, logs.Tail(s.logs.String(), 25))
			}
		}
		// BABELCAST_E2E_LOGS=dir keeps every server's whole log.
		if dir := os.Getenv("BABELCAST_E2E_LOGS"); dir != "" {
			for _, s := range c.Servers {
				name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-nats-" + s.Name + ".log"
				_ = os.WriteFile(filepath.Join(dir, name), []byte(s.logs.String()), 0o644)
			}
		}
	})
	if !o.NoWait {
		c.AwaitReady()
	}
	return c
}

// AwaitReady waits until every running server is ready with JetStream.
func (c *Cluster) AwaitReady() {
	c.t.Helper()
	for _, s := range c.Servers {
		if s.Running() {
			s.awaitReady()
		}
	}
}

// freePorts finds n loopback ports free right now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// URLs is every server's client URL, comma-separated, as --nats takes them.
func (c *Cluster) URLs() string {
	var u []string
	for _, s := range c.Servers {
		u = append(u, s.URL())
	}
	return strings.Join(u, ",")
}

// Server returns the server named name.
func (c *Cluster) Server(name string) *Server {
	for _, s := range c.Servers {
		if s.Name == name {
			return s
		}
	}
	c.t.Fatalf("no server %s", name)
	return nil
}

// URL is the server's client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.Port) }

func (s *Server) start(bin string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(bin, "-c", s.conf)
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	// Die with the test binary, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.c.t.Fatalf("start %s: %v", s.Name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
}

// awaitReady waits until the server answers on its client port and its
// healthz says JetStream is up.
func (s *Server) awaitReady() {
	s.c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if s.healthy() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.c.t.Fatalf("nats-server %s not ready after 30s:\n%s", s.Name, logs.Tail(s.logs.String(), 30))
}

// healthy reports whether the server's /healthz says it is ready for
// clients with JetStream current (it knows the meta leader and its
// streams have caught up).
func (s *Server) healthy() bool {
	resp, err := healthClient.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", s.http))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

var healthClient = &http.Client{Timeout: 2 * time.Second}

// Kill ends the process as kill -9 does: no goodbye to clients or peers,
// no leadership handed over.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
	default:
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	<-done
}

// Running reports whether the process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Restart starts a killed server again on its store, and waits until it is
// ready.
func (s *Server) Restart() {
	s.c.t.Helper()
	s.Start()
	s.awaitReady()
}

// Start starts a killed server again on its store, without waiting.
func (s *Server) Start() {
	s.Kill()
	s.start(Binary(s.c.t))
}

// Log is what the server has logged so far.
func (s *Server) Log() string { return s.logs.String() }

// StreamLeader asks the cluster (through nc) which server leads stream,
// and which servers hold replicas that are current (the leader included).
func StreamLeader(ctx context.Context, nc *nats.Conn, stream string) (leader string, current []string, err error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return "", nil, err
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return "", nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return "", nil, err
	}
	if info.Cluster == nil {
		return "", nil, fmt.Errorf("stream %s: no cluster info", stream)
	}
	if info.Cluster.Leader != "" {
		current = append(current, info.Cluster.Leader)
	}
	for _, r := range info.Cluster.Replicas {
		if r.Current && !r.Offline {
			current = append(current, r.Name)
		}
	}
	return info.Cluster.Leader, current, nil
}

// Connect opens a client connection to the cluster for the test's own
// checks; it is closed when the test ends.
func (c *Cluster) Connect(opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	nc, err := nats.Connect(c.URLs(), append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}
