package fanout

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/babelcast/babelcast/internal/kvlease"
	"github.com/babelcast/babelcast/internal/livestate"
)

// presenceEvery bounds how often changed counts are written: a connect storm
// becomes a few writes a second, not one per listener.
const presenceEvery = 250 * time.Millisecond

// presence keeps listeners.<room>.<lang>.<node> in the state bucket equal to
// this node's listener counts: written on change (coalesced), refreshed
// every livestate.Refresh so the TTL keeps them alive, deleted at zero.
type presence struct {
	node string
	keys *kvlease.Refresher
}

func newPresence(kv jetstream.KeyValue, node string, log *slog.Logger) *presence {
	return &presence{node: node, keys: kvlease.NewRefresher(kvlease.RefresherOptions{
		KV: kv, Every: livestate.Refresh, Coalesce: presenceEvery, Log: log, What: "presence",
	})}
}

// set records channel (roomID, lang)'s listener count on this node.
func (p *presence) set(roomID, lang string, n int) {
	var v []byte
	if n > 0 {
		v = livestate.Encode(livestate.Listeners{Count: n})
	}
	p.keys.Set(livestate.ListenersKey(roomID, lang, p.node), v)
}

// run writes changes and refreshes until ctx ends.
func (p *presence) run(ctx context.Context) { p.keys.Run(ctx) }

// clear deletes every key this node wrote (at shutdown).
func (p *presence) clear(ctx context.Context) error { return p.keys.Clear(ctx) }
