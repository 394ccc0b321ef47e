// Command fanout measures babelcast's fan-out:
// it starts an in-process node (embedded NATS + the fanout role on
// loopback), connects N listeners from a child process (this binary
// re-executed, so the server's CPU is measured apart from the clients'),
// publishes 24 kHz PCM frames at real time for a while and prints, per N:
// the share of frames delivered, the added latency (publish → listener
// receipt) at p50/p99, the server's CPU per listener and its memory per
// listener.
//
//	go run ./test/bench/fanout -listeners 100,1000,5000 -frame 20ms -duration 30s
//
// With -target URL it does not start a server but drives an existing HTTP
// audio stream (e.g. Icecast 2 fed by -source-put), so both can be compared
// under the same client load; see docs/fanout-bench.md.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/babelcast/babelcast/fanout"
	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
)

// magic starts every benchmark frame so a byte-stream client (WAV, Icecast)
// can find frame boundaries; then the sequence number and publish time.
var magic = []byte("BCBENCH1")

const headerLen = 24 // magic, seq, unix ns

type config struct {
	listeners []int
	frame     time.Duration
	duration  time.Duration
	transport string // ws or wav
	connConc  int
	queue     int
	target    string // drive this URL instead of starting a server
	sourcePut string // with -target: PUT the stream here (Icecast source)
	procPID   int    // with -target: measure this process's CPU/RSS
	cpuProf   string // write the server's CPU profile of the publishing window here
	baseline  bool   // measure the CPU of publishing with no listeners first
	memProf   string // write a heap profile with the listeners connected here
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "clients" {
		runClients(os.Args[2:])
		return
	}
	var c config
	var ns string
	flag.StringVar(&ns, "listeners", "100,1000,5000", "listener counts to measure, comma-separated")
	flag.DurationVar(&c.frame, "frame", 20*time.Millisecond, "audio frame duration (20ms or 100ms)")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "how long to publish at real time, per count")
	flag.StringVar(&c.transport, "transport", "ws", "ws (listener WebSocket), wav (HTTP WAV stream), opus (listener WebSocket, ?codec=opus) or ogg (HTTP Ogg/Opus stream; with -target, an Icecast Ogg mount)")
	flag.IntVar(&c.connConc, "connect-concurrency", 100, "connections opened at once by the clients")
	flag.IntVar(&c.queue, "queue-frames", 0, "fanout QueueFrames (0: default)")
	flag.StringVar(&c.target, "target", "", "HTTP stream URL of another server to drive (e.g. Icecast); no babelcast server is started")
	flag.StringVar(&c.sourcePut, "source-put", "", "with -target: URL to PUT the source stream to (http://source:PASS@host:port/mount)")
	flag.IntVar(&c.procPID, "pid", 0, "with -target: PID of the server process, for CPU and RSS")
	flag.BoolVar(&c.baseline, "baseline", true, "first measure the server's CPU while publishing to no listeners, and count only the CPU above it per listener")
	flag.StringVar(&c.memProf, "memprofile", "", "write a heap profile of the server with the listeners connected")
	flag.StringVar(&c.cpuProf, "cpuprofile", "", "write a CPU profile of the server while publishing (last count only)")
	flag.Parse()
	for _, s := range strings.Split(ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fatalf("bad -listeners %q", ns)
		}
		c.listeners = append(c.listeners, n)
	}
	if c.frame < 10*time.Millisecond || c.frame > time.Second {
		fatalf("-frame must be between 10ms and 1s")
	}
	if opusTransport(c.transport) && c.frame != 100*time.Millisecond {
		fatalf("-transport %s measures 100 ms frames (the program's tick): -frame 100ms", c.transport)
	}
	raiseNoFile()
	fmt.Printf("# fan-out benchmark: %s frames (%d B), %s per run, transport %s, GOMAXPROCS %d, %s\n",
		c.frame, frameBytes(c.frame), c.duration, transportName(c), runtime.GOMAXPROCS(0), cpuModel())
	run := func(n int) result {
		var r result
		var err error
		if c.target != "" {
			r, err = runExternal(c, n)
		} else {
			r, err = runOne(c, n)
		}
		if err != nil {
			fatalf("N=%d: %v", n, err)
		}
		return r
	}
	// The source and bus cost the same whatever the listeners: measure
	// them alone, and count only the rest per listener.
	var base float64 // share of a core
	if c.baseline {
		b := run(0)
		base = b.serverCPU.Seconds() / b.window.Seconds()
		fmt.Printf("# baseline (publishing, no listeners): %.1f%% of a core\n", base*100)
	}
	fmt.Printf("%-7s %-9s %-10s %-10s %-10s %-16s %-14s %-14s %s\n",
		"N", "delivered", "p50", "p99", "max", "CPU/listener", "heap/listener", "RSS/listener", "notes")
	for _, n := range c.listeners {
		run(n).print(n, base)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "fanout bench: "+format+"\n", a...)
	os.Exit(1)
}

func frameBytes(d time.Duration) int { return int(d.Seconds()*24000) * 2 }

// raiseNoFile lifts the soft open-files limit to the hard one: every
// listener is a socket on each side.
func raiseNoFile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// result of one run.
type result struct {
	published   uint64
	clients     clientReport
	serverCPU   time.Duration // server process CPU during the publishing window
	window      time.Duration
	heapPerConn float64 // bytes
	rssPerConn  float64 // bytes
	dropped     float64
	notes       []string
}

func (r result) print(n int, base float64) {
	want := float64(r.published) * float64(n)
	delivered := 0.0
	if want > 0 {
		delivered = float64(r.clients.Frames) / want
	}
	cpu := "-"
	notes := r.notes
	if r.serverCPU > 0 {
		// Share of one core per listener, in per mille of a core.
		total := r.serverCPU.Seconds() / r.window.Seconds()
		perConn := max(total-base, 0) / float64(n)
		cpu = fmt.Sprintf("%.3f‰ core", perConn*1000)
		notes = append(notes, fmt.Sprintf("server CPU %.0f%% of a core", total*100))
	}
	if r.clients.Closed > 0 {
		notes = append(notes, fmt.Sprintf("%d closed by server", r.clients.Closed))
	}
	if r.clients.Failed > 0 {
		notes = append(notes, fmt.Sprintf("%d failed to connect", r.clients.Failed))
	}
	notes = append(notes, fmt.Sprintf("client CPU %.0f%% of a core", r.clients.CPU/r.window.Seconds()*100))
	if r.clients.ServerDelay > 0 {
		notes = append(notes, fmt.Sprintf("server's delay messages: median %.0f ms", r.clients.ServerDelay))
	}
	if cr := r.clients; cr.Window > 0 && n > 0 {
		per := cr.Window * float64(n)
		notes = append(notes, fmt.Sprintf("egress %.1f kbit/s per listener (%.1f during sound), %.1f packets/s",
			float64(cr.Bytes)*8/per/1000, float64(cr.LoudBytes)*8/(float64(cr.LoudPackets)*0.02*1000), float64(cr.Packets)/per))
	}
	fmt.Printf("%-7d %-9s %-10s %-10s %-10s %-16s %-14s %-14s %s\n", n,
		fmt.Sprintf("%.2f%%", delivered*100),
		fmtDur(r.clients.P50), fmtDur(r.clients.P99), fmtDur(r.clients.Max), cpu,
		fmtBytes(r.heapPerConn), fmtBytes(r.rssPerConn), strings.Join(notes, "; "))
}

func fmtDur(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.1fms", us/1000)
	}
	return fmt.Sprintf("%.0fµs", us)
}

func fmtBytes(b float64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f KiB", b/1024)
}

// runOne measures one listener count against an in-process babelcast node.
func runOne(c config, n int) (result, error) {
	var r result
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "babelcast-bench-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := bus.Open(ctx, bus.Options{DataDir: dir, Logger: quiet})
	if err != nil {
		return r, err
	}
	defer b.Close()
	rooms := room.NewStore(b.Rooms)
	rm := &room.Room{ID: "bench", SourceLanguage: "en", Languages: []room.Language{{Code: "es"}}}
	if err := rm.Normalize(); err != nil {
		return r, err
	}
	rm.SpeakerKey = room.NewSpeakerKey()
	if err := rooms.Create(ctx, rm); err != nil {
		return r, err
	}
	srv, err := fanout.New(fanout.Options{NC: b.Conn, Rooms: rooms, State: b.State, Node: "bench", Log: quiet, QueueFrames: c.queue,
		// Every client is on loopback: no per-address or node cap.
		MaxListeners: -1, MaxListenersPerAddress: -1})
	if err != nil {
		return r, err
	}
	router := chi.NewRouter()
	srv.Mount(router)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	hs := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	runDone := make(chan struct{})
	go func() { _ = srv.Run(ctx); close(runDone) }()
	defer func() {
		cancel()
		<-runDone
		_ = hs.Close()
	}()

	url := "ws://" + ln.Addr().String() + "/api/v1/rooms/bench/listen?lang=es"
	switch c.transport {
	case "wav", "ogg":
		url = "http://" + ln.Addr().String() + "/api/v1/rooms/bench/audio/es." + c.transport
	case "opus":
		url += "&codec=opus"
	}
	heap0, rss0 := memNow(0)
	stack0 := lastStack

	// A separate publisher connection, as the translator would have.
	pub, err := b.Connect()
	if err != nil {
		return r, err
	}
	defer pub.Close()
	publish := func(seq uint64, payload []byte) error {
		return pub.PublishMsg(subject.AudioMsg(subject.Out("bench", "es"), payload, seq, time.Now()))
	}
	if err := drive(c, n, url, publish, 0, &r); err != nil {
		return r, err
	}
	heap1, rss1 := r.heapPerConn, r.rssPerConn // absolute values set by drive
	r.heapPerConn = (heap1 - heap0) / float64(max(n, 1))
	if n > 0 {
		r.notes = append(r.notes, fmt.Sprintf("of which stacks %.1f KiB", (lastStack-stack0)/float64(n)/1024))
	}
	r.rssPerConn = (rss1 - rss0) / float64(max(n, 1))
	return r, nil
}

// drive starts the clients, waits until all listen, publishes for the
// duration, and collects the figures. The memory fields of r are set to
// the absolute heap and RSS with the listeners connected. With n == 0 it
// only publishes: the baseline cost of the source and the bus.
func drive(c config, n int, url string, publish func(seq uint64, payload []byte) error, pid int, r *result) error {
	var (
		stdin io.Writer = io.Discard
		out   *bufio.Reader
	)
	if n > 0 {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command(self, "clients", "-url", url, "-n", strconv.Itoa(n),
			"-frame-bytes", strconv.Itoa(frameBytes(c.frame)), "-concurrency", strconv.Itoa(c.connConc),
			"-transport", c.transport)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		stdin, out = in, bufio.NewReader(stdout)
		line, err := out.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "ready" {
			return fmt.Errorf("clients did not get ready: %q %v", line, err)
		}
		// Let the connect storm settle before measuring.
		time.Sleep(2 * time.Second)
	}
	r.heapPerConn, r.rssPerConn = memNow(pid)
	if c.memProf != "" && pid == 0 && n > 0 {
		f, err := os.Create(c.memProf)
		if err != nil {
			return err
		}
		_ = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}

	payload := make([]byte, frameBytes(c.frame))
	copy(payload, magic)
	var shaped *markerSource // Opus: frames shaped into markers (opus.go)
	if opusTransport(c.transport) {
		shaped = newMarkerSource()
	}
	start := time.Now().Add(10 * time.Millisecond)
	if _, err := fmt.Fprintln(stdin, "start", start.UnixNano()); err != nil {
		return err
	}
	if c.cpuProf != "" && pid == 0 && n > 0 {
		f, err := os.Create(c.cpuProf)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuOf(pid)
	frames := uint64(c.duration / c.frame)
	var markerSent []string // Opus: when each marker was published, unix ns
	for seq := uint64(1); seq <= frames; seq++ {
		if d := time.Until(start.Add(time.Duration(seq-1) * c.frame)); d > 0 {
			time.Sleep(d)
		}
		p := make([]byte, len(payload))
		copy(p, payload)
		binary.LittleEndian.PutUint64(p[8:], seq)
		binary.LittleEndian.PutUint64(p[16:], uint64(time.Now().UnixNano()))
		if shaped != nil {
			p = shaped.frame(seq, c.frame)
			if (seq-1)%markerGroup == 1 {
				markerSent = append(markerSent, strconv.FormatInt(time.Now().UnixNano(), 10))
			}
		}
		if err := publish(seq, p); err != nil {
			return err
		}
		r.published = seq
	}
	// Give the last frames time to arrive, then stop the clients.
	time.Sleep(time.Second)
	r.window = time.Since(start)
	r.serverCPU = cpuOf(pid) - cpu0
	if n == 0 {
		return nil
	}
	if shaped != nil {
		if _, err := fmt.Fprintln(stdin, "markers", strings.Join(markerSent, " ")); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(stdin, "stop %d\n", r.published); err != nil {
		return err
	}
	if err := json.NewDecoder(out).Decode(&r.clients); err != nil {
		return fmt.Errorf("client report: %w", err)
	}
	if shaped != nil {
		r.published = markersIn(r.published) // what the clients count
	}
	return nil
}

// lastStack is the goroutine stack memory seen by the last memNow(0).
var lastStack float64

// memNow returns heap in use (after a GC) and RSS, in bytes, of this
// process (pid 0) or of another one (RSS only).
func memNow(pid int) (heap, rss float64) {
	if pid == 0 {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = float64(ms.HeapInuse + ms.StackInuse)
		lastStack = float64(ms.StackInuse)
	}
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	b, err := os.ReadFile("/proc/" + p + "/statm")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			pages, _ := strconv.ParseFloat(f[1], 64)
			rss = pages * float64(os.Getpagesize())
		}
	}
	return heap, rss
}

// cpuOf is the CPU time (user + system) used so far by this process (pid 0)
// or another one.
func cpuOf(pid int) time.Duration {
	if pid == 0 {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
