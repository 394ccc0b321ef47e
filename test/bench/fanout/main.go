// Command fanout measures babelcast's fan-out (issue "Fan-out that scales"):
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
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/fanout"
	"github.com/babelcast/babelcast/internal/bus"
	"github.com/babelcast/babelcast/internal/room"
	"github.com/babelcast/babelcast/internal/subject"
	"github.com/babelcast/babelcast/internal/wire"
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

// runExternal drives another server's HTTP stream: it sends the source to
// c.sourcePut with Icecast 2.4's PUT source protocol and connects the
// listeners to c.target.
func runExternal(c config, n int) (result, error) {
	var r result
	if c.sourcePut == "" {
		return r, fmt.Errorf("-target needs -source-put")
	}
	u, err := neturl.Parse(c.sourcePut)
	if err != nil {
		return r, err
	}
	pw, _ := u.User.Password()
	auth := base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + pw))
	var src net.Conn
	ctype := "audio/wav"
	if c.transport == "ogg" {
		ctype = "audio/ogg"
	}
	// The previous run's mount may linger a few seconds: retry.
	for try := 0; ; try++ {
		src, err = net.Dial("tcp", u.Host)
		if err != nil {
			return r, err
		}
		fmt.Fprintf(src, "PUT %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic %s\r\nContent-Type: %s\r\n"+
			"Ice-Public: 0\r\nIce-Name: babelcast bench\r\n\r\n", u.RequestURI(), u.Host, auth, ctype)
		_ = src.SetReadDeadline(time.Now().Add(5 * time.Second))
		status, err := bufio.NewReader(src).ReadString('\n')
		if err == nil && strings.Contains(status, " 200") {
			break
		}
		src.Close()
		if try == 15 {
			return r, fmt.Errorf("source PUT refused: %q %v", status, err)
		}
		time.Sleep(time.Second)
	}
	_ = src.SetReadDeadline(time.Time{})
	defer src.Close()
	// The stream starts like ours: a WAV header, then frames; or Ogg/Opus
	// headers, then a page a frame.
	var ogg *oggSource
	if c.transport == "ogg" {
		if ogg, err = newOggSource(src); err != nil {
			return r, err
		}
	} else if _, err := src.Write(wavHeader()); err != nil {
		return r, err
	}
	// After publishing ends, push silence: Icecast holds the last chunk
	// until more data comes. Nothing flows before publishing starts, as
	// with babelcast (icecast.sh sets a long source timeout for that).
	keep := make(chan struct{})
	var mu sync.Mutex
	var lastWrite time.Time
	go func() {
		t := time.NewTicker(c.frame)
		defer t.Stop()
		// Silence, framed like the real frames (sequence 0, not
		// counted).
		silence := make([]byte, frameBytes(c.frame))
		if ogg == nil {
			copy(silence, magic)
		}
		for {
			select {
			case <-keep:
				return
			case <-t.C:
				mu.Lock()
				if !lastWrite.IsZero() && time.Since(lastWrite) > c.frame*3/2 {
					if ogg != nil {
						_ = ogg.write(silence)
					} else {
						_, _ = src.Write(silence)
					}
					lastWrite = time.Now()
				}
				mu.Unlock()
			}
		}
	}()
	defer close(keep)
	publish := func(seq uint64, payload []byte) error {
		mu.Lock()
		defer mu.Unlock()
		lastWrite = time.Now()
		if ogg != nil {
			return ogg.write(payload)
		}
		_, err := src.Write(payload)
		return err
	}
	time.Sleep(time.Second)
	_, rss0 := memNow(c.procPID)
	if c.transport != "ogg" {
		c.transport = "stream"
	}
	if err := drive(c, n, c.target, publish, c.procPID, &r); err != nil {
		return r, err
	}
	r.rssPerConn = (r.rssPerConn - rss0) / float64(max(n, 1))
	r.heapPerConn = 0
	return r, nil
}

func wavHeader() []byte {
	h := make([]byte, 44)
	le := binary.LittleEndian
	copy(h[0:], "RIFF")
	le.PutUint32(h[4:], 0xFFFFFFFF)
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], 1)
	le.PutUint16(h[22:], 1)
	le.PutUint32(h[24:], 24000)
	le.PutUint32(h[28:], 48000)
	le.PutUint16(h[32:], 2)
	le.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	le.PutUint32(h[40:], 0xFFFFFFFF)
	return h
}

// ---- the client process ----

// clientReport is what the client process tells the parent.
type clientReport struct {
	Frames uint64  `json:"frames"` // frames received with seq ≤ published, all listeners
	P50    float64 `json:"p50_us"`
	P99    float64 `json:"p99_us"`
	Max    float64 `json:"max_us"`
	Closed int     `json:"closed"` // connections the server closed
	Failed int     `json:"failed"` // connections that never opened
	CPU    float64 `json:"cpu_s"`  // this process's CPU time while publishing
	// Opus transports (opus.go): bytes and packets received while
	// measuring (all listeners), those of groups with sound, the window.
	Bytes       uint64  `json:"bytes,omitempty"`
	Packets     uint64  `json:"packets,omitempty"`
	LoudBytes   uint64  `json:"loud_bytes,omitempty"`
	LoudPackets uint64  `json:"loud_packets,omitempty"`
	Window      float64 `json:"window_s,omitempty"`
	// ServerDelay is the median of the server's own "delay" messages
	// (capture, here publish, to send) on WebSockets, in ms.
	ServerDelay float64 `json:"server_delay_ms,omitempty"`
}

// delays collects the server's delay messages of every connection.
type delays struct {
	mu sync.Mutex
	ms []float64
}

var serverDelay delays

// note takes a text message, keeping it if it is a delay.
func (d *delays) note(b []byte) {
	var m wire.Delay
	if json.Unmarshal(b, &m) != nil || m.Type != wire.TypeDelay {
		return
	}
	d.mu.Lock()
	d.ms = append(d.ms, float64(m.MS))
	d.mu.Unlock()
}

// median of the delays noted since reset.
func (d *delays) median() float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.ms) == 0 {
		return 0
	}
	s := append([]float64(nil), d.ms...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func (d *delays) reset() { d.mu.Lock(); d.ms = nil; d.mu.Unlock() }

// hist is a log-scale latency histogram shared by all connections: bucket
// i holds latencies around 1.02^i µs.
type hist struct {
	b   [1200]atomic.Uint64
	max atomic.Int64
}

func (h *hist) add(us float64) {
	i := 0
	if us > 1 {
		i = int(math.Log(us) / math.Log(1.02))
	}
	if i >= len(h.b) {
		i = len(h.b) - 1
	}
	h.b[i].Add(1)
	for {
		m := h.max.Load()
		if int64(us) <= m || h.max.CompareAndSwap(m, int64(us)) {
			break
		}
	}
}

func (h *hist) quantile(q float64) float64 {
	var total uint64
	for i := range h.b {
		total += h.b[i].Load()
	}
	if total == 0 {
		return 0
	}
	target := uint64(math.Ceil(q * float64(total)))
	var acc uint64
	for i := range h.b {
		acc += h.b[i].Load()
		if acc >= target {
			return math.Pow(1.02, float64(i)+0.5)
		}
	}
	return float64(h.max.Load())
}

func runClients(args []string) {
	fs := flag.NewFlagSet("clients", flag.ExitOnError)
	url := fs.String("url", "", "stream URL")
	n := fs.Int("n", 100, "listeners")
	fb := fs.Int("frame-bytes", 960, "bytes per frame")
	conc := fs.Int("concurrency", 100, "connections opened at once")
	transport := fs.String("transport", "ws", "ws, wav or stream")
	_ = fs.Parse(args)
	raiseNoFile()
	debug.SetGCPercent(400)

	var (
		h       hist
		frames  atomic.Uint64
		closed  atomic.Int64
		failed  atomic.Int64
		limit   atomic.Uint64 // frames with a higher seq are not counted
		stopped = make(chan struct{})
		wg      sync.WaitGroup
		ready   sync.WaitGroup
		sem     = make(chan struct{}, *conc)
	)
	limit.Store(math.MaxUint64)
	record := func(b []byte) {
		if len(b) < headerLen || string(b[:8]) != string(magic) {
			return
		}
		seq := binary.LittleEndian.Uint64(b[8:])
		sent := int64(binary.LittleEndian.Uint64(b[16:]))
		if seq == 0 || seq > limit.Load() {
			return
		}
		frames.Add(1)
		h.add(float64(time.Now().UnixNano()-sent) / 1000)
	}
	oc := &opusCounters{frame: time.Duration(*fb/2) * time.Second / 24000}
	var markerSent []int64
	oc.limit.Store(math.MaxUint64)
	dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 8192}
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}}
	for range *n {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			isReady := false
			done := func() {
				if !isReady {
					isReady = true
					ready.Done()
				}
			}
			defer done()
			if *transport == "ws" || *transport == "opus" {
				var conn *websocket.Conn
				var err error
				for try := 0; try < 5; try++ {
					conn, _, err = dialer.Dial(*url, nil)
					if err == nil {
						break
					}
					time.Sleep(200 * time.Millisecond)
				}
				<-sem
				if err != nil {
					failed.Add(1)
					return
				}
				defer conn.Close()
				go func() { <-stopped; conn.Close() }()
				if _, _, err := conn.ReadMessage(); err != nil { // hello: subscribed
					failed.Add(1)
					return
				}
				done()
				if *transport == "opus" {
					if err := readOpusWS(conn, &opusListener{c: oc, lastOnset: -1}); websocket.IsCloseError(err, wire.CloseTooSlow, wire.CloseShutdown) {
						closed.Add(1)
					}
					return
				}
				// Read each message into one reused buffer: the clients'
				// share of the machine should go to reading, not to GC.
				buf := make([]byte, headerLen)
				for {
					typ, rd, err := conn.NextReader()
					if err != nil {
						if websocket.IsCloseError(err, wire.CloseTooSlow, wire.CloseShutdown) {
							closed.Add(1)
						}
						return
					}
					if typ != websocket.BinaryMessage {
						if b, err := io.ReadAll(io.LimitReader(rd, 512)); err == nil {
							serverDelay.note(b)
						}
						continue
					}
					if _, err := io.ReadFull(rd, buf); err == nil {
						record(buf)
					}
				}
			}
			// HTTP byte stream (our WAV, or Icecast): find frame
			// boundaries by the magic, then read whole frames.
			resp, err := httpc.Get(*url)
			<-sem
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
				if resp != nil {
					resp.Body.Close()
				}
				return
			}
			defer resp.Body.Close()
			go func() { <-stopped; resp.Body.Close() }()
			done()
			if *transport == "ogg" {
				_ = readOgg(resp.Body, &opusListener{c: oc, lastOnset: -1})
				return
			}
			br := bufio.NewReaderSize(resp.Body, 2**fb)
			buf := make([]byte, *fb)
			aligned := false
			for {
				if !aligned {
					// Scan for the magic.
					b, err := br.Peek(br.Size())
					if len(b) < len(magic) {
						if err != nil {
							return
						}
						continue
					}
					i := bytes.Index(b, magic)
					if i < 0 {
						// Keep the last bytes: the magic may straddle.
						if _, err := br.Discard(len(b) - len(magic) + 1); err != nil {
							return
						}
						continue
					}
					if _, err := br.Discard(i); err != nil {
						return
					}
					aligned = true
				}
				if _, err := io.ReadFull(br, buf); err != nil {
					return
				}
				if string(buf[:8]) != string(magic) {
					aligned = false // lost sync (a dropped partial frame)
					continue
				}
				record(buf)
			}
		}()
	}
	ready.Wait()
	fmt.Println("ready")
	// "start" when publishing starts, "stop <published>" when it is over.
	in := bufio.NewReader(os.Stdin)
	var cpu0 time.Duration
	var began time.Time
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "start" {
			frames.Store(0)
			serverDelay.reset()
			cpu0 = cpuOf(0)
			if ns, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				began = time.Unix(0, ns)
				oc.start.Store(ns)
			}
			continue
		}
		if len(f) > 0 && f[0] == "markers" {
			for _, v := range f[1:] {
				if ns, err := strconv.ParseInt(v, 10, 64); err == nil {
					markerSent = append(markerSent, ns)
				}
			}
			continue
		}
		if len(f) == 2 && f[0] == "stop" {
			if p, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				limit.Store(p)
				oc.limit.Store(p)
			}
			break
		}
	}
	oc.latencies(markerSent, h.add)
	serverDelayMS := serverDelay.median()
	rep := clientReport{Frames: frames.Load(), P50: h.quantile(0.5), P99: h.quantile(0.99), Max: float64(h.max.Load()),
		Closed: int(closed.Load()), Failed: int(failed.Load()), CPU: (cpuOf(0) - cpu0).Seconds(), ServerDelay: serverDelayMS}
	if *transport == "opus" || *transport == "ogg" {
		rep.Frames, rep.Bytes, rep.Packets = oc.markers.Load(), oc.bytes.Load(), oc.packets.Load()
		rep.LoudBytes, rep.LoudPackets = oc.loudBytes.Load(), oc.loudPkts.Load()
		rep.Window = time.Since(began).Seconds()
	}
	close(stopped)
	_ = json.NewEncoder(os.Stdout).Encode(rep)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

func transportName(c config) string {
	if c.target != "" {
		return "HTTP stream from " + c.target
	}
	switch c.transport {
	case "wav":
		return "babelcast WAV over HTTP"
	case "ogg":
		return "babelcast Ogg/Opus over HTTP"
	case "opus":
		return "babelcast listener WebSocket, Opus"
	}
	return "babelcast listener WebSocket"
}
