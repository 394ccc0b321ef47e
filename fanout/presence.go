package fanout

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/subject"
)

// presenceEvery bounds how often changed counts are written: a connect storm
// becomes a few writes a second, not one per listener.
const presenceEvery = 250 * time.Millisecond

// presence keeps listeners.<room>.<lang>.<node> in the state bucket equal to
// this node's listener counts: written on change (coalesced), refreshed
// every subject.StateRefresh so the TTL keeps them alive, deleted at zero.
type presence struct {
	kv   jetstream.KeyValue
	node string
	log  *slog.Logger

	mu      sync.Mutex
	want    map[string]int      // key → count to publish; 0 = delete
	written map[string]int      // key → count last written
	dirty   map[string]struct{} // keys whose count changed
	kick    chan struct{}
	failing bool // last write failed (log once per streak)
}

func newPresence(kv jetstream.KeyValue, node string, log *slog.Logger) *presence {
	return &presence{
		kv: kv, node: node, log: log,
		want: map[string]int{}, written: map[string]int{}, dirty: map[string]struct{}{},
		kick: make(chan struct{}, 1),
	}
}

// set records channel (roomID, lang)'s listener count on this node.
func (p *presence) set(roomID, lang string, n int) {
	k := subject.ListenersKey(roomID, lang, p.node)
	p.mu.Lock()
	p.want[k] = n
	p.dirty[k] = struct{}{}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run writes changes and refreshes until ctx ends.
func (p *presence) run(ctx context.Context) {
	refresh := time.NewTicker(subject.StateRefresh)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
			p.flush(ctx, false)
			// Coalesce what arrives meanwhile into the next write.
			select {
			case <-ctx.Done():
				return
			case <-time.After(presenceEvery):
			}
		case <-refresh.C:
			p.flush(ctx, true)
		}
	}
}

// flush writes dirty keys (all live keys when refresh is set).
func (p *presence) flush(ctx context.Context, refresh bool) {
	p.mu.Lock()
	todo := map[string]int{}
	for k := range p.dirty {
		_, wrote := p.written[k]
		if p.want[k] == 0 && !wrote {
			delete(p.want, k) // came and went between two writes
			continue
		}
		todo[k] = p.want[k]
	}
	if refresh {
		for k, n := range p.want {
			todo[k] = n
		}
	}
	p.dirty = map[string]struct{}{}
	p.mu.Unlock()

	var failed []string
	var lastErr error
	for k, n := range todo {
		if err := p.write(ctx, k, n); err != nil {
			if ctx.Err() != nil {
				return
			}
			failed = append(failed, k)
			lastErr = err
			continue
		}
		p.mu.Lock()
		if n == 0 {
			delete(p.written, k)
			if p.want[k] == 0 {
				delete(p.want, k)
			}
		} else {
			p.written[k] = n
		}
		p.mu.Unlock()
	}

	p.mu.Lock()
	for _, k := range failed { // retried on the next kick or refresh
		p.dirty[k] = struct{}{}
	}
	wasFailing := p.failing
	p.failing = len(failed) > 0
	p.mu.Unlock()
	switch {
	case len(failed) > 0 && !wasFailing:
		p.log.Warn("presence write failed; will retry", "keys", len(failed), "err", lastErr)
	case len(failed) == 0 && wasFailing:
		p.log.Info("presence writes work again")
	}
	if len(failed) > 0 {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

func (p *presence) write(ctx context.Context, key string, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if n == 0 {
		err := p.kv.Delete(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		return err
	}
	b, _ := json.Marshal(subject.ListenerCount{Count: n})
	_, err := p.kv.Put(ctx, key, b)
	return err
}

// clear deletes every key this node wrote (at shutdown).
func (p *presence) clear(ctx context.Context) error {
	p.mu.Lock()
	keys := map[string]struct{}{}
	for k := range p.written {
		keys[k] = struct{}{}
	}
	for k, n := range p.want {
		if n > 0 {
			keys[k] = struct{}{}
		}
	}
	p.mu.Unlock()
	var first error
	for k := range keys {
		if err := p.write(ctx, k, 0); err != nil && first == nil {
			first = err
		}
	}
	p.mu.Lock()
	p.written, p.want, p.dirty = map[string]int{}, map[string]int{}, map[string]struct{}{}
	p.mu.Unlock()
	return first
}
