package main

// This file drives a server that is not babelcast (-target), e.g. Icecast.

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	neturl "net/url"
	"strings"
	"sync"
	"time"
)

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
