package main

// This file is the child process: the listeners, and what they measure.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/babelcast/babelcast/internal/wire"
)

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
