package translate

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/babelcast/babelcast/internal/livestate"
)

// clusterView is what this node knows of every translator node: who holds
// which lease and the state of every channel. Run's goroutine writes it
// from KV watches; channels read it.
type clusterView struct {
	mu       sync.Mutex
	leases   map[string]leaseInfo
	expired  map[string]time.Time   // leases last seen to expire (not released), and when
	channels map[string]viewChannel // by lease key
	rev      uint64                 // last State bucket revision applied
	moved    chan struct{}          // closed and replaced when rev moves
}

type leaseInfo struct {
	owner string
	rev   uint64
}

type viewChannel struct {
	st livestate.Channel
	// entered is the State bucket revision at which the channel last went
	// from not running to running (starting or active). Every node sees
	// the same stream, so it orders channels the same way everywhere.
	entered uint64
}

func newClusterView() *clusterView {
	return &clusterView{leases: map[string]leaseInfo{}, expired: map[string]time.Time{}, channels: map[string]viewChannel{}}
}

// applyLeases takes an update of the Leases bucket's watch and returns the
// keys whose lease is gone.
func (v *clusterView) applyLeases(u livestate.Update) (freed []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if u.Reset {
		for key := range v.leases {
			freed = append(freed, key)
		}
		clear(v.leases)
		clear(v.expired)
	}
	for _, e := range u.Entries {
		delete(v.expired, e.Key)
		if !e.Present {
			delete(v.leases, e.Key)
			if e.Expired {
				v.expired[e.Key] = time.Now()
			}
			freed = append(freed, e.Key)
			continue
		}
		v.leases[e.Key] = leaseInfo{owner: string(e.Value), rev: e.Revision}
	}
	return freed
}

// expiredSince is when the lease of key expired (rather than being
// released or freed), if that is the last thing that happened to it.
func (v *clusterView) expiredSince(key string) (time.Time, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	at, ok := v.expired[key]
	return at, ok
}

func (v *clusterView) lease(key string) (owner string, rev uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	l := v.leases[key]
	return l.owner, l.rev
}

// setChannel records a channel's state (gone: deleted, expired or
// unreadable), written at State bucket revision rev.
func (v *clusterView) setChannel(key string, st livestate.Channel, gone bool, rev uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if gone {
		delete(v.channels, key)
		return
	}
	vc := viewChannel{st: st}
	if st.Running() {
		vc.entered = rev
		if prev, ok := v.channels[key]; ok && prev.st.Running() {
			vc.entered = prev.entered
		}
	}
	v.channels[key] = vc
}

// keepChannels forgets the channels not in keep: after a restarted watch
// listed every channel present.
func (v *clusterView) keepChannels(keep map[string]bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for key := range v.channels {
		if !keep[key] {
			delete(v.channels, key)
		}
	}
}

// applied notes that every State bucket change up to rev is in the view.
func (v *clusterView) applied(rev uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if rev > v.rev {
		v.rev = rev
		if v.moved != nil {
			close(v.moved)
			v.moved = nil
		}
	}
}

// caughtUp waits until the view holds every State change up to rev.
func (v *clusterView) caughtUp(ctx context.Context, rev uint64) bool {
	for {
		v.mu.Lock()
		if v.rev >= rev {
			v.mu.Unlock()
			return true
		}
		if v.moved == nil {
			v.moved = make(chan struct{})
		}
		moved := v.moved
		v.mu.Unlock()
		select {
		case <-moved:
		case <-ctx.Done():
			return false
		}
	}
}

// running counts channels starting or active, on node (or any node if
// node is ""), leaving out channel except.
func (v *clusterView) running(node, except string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for key, vc := range v.channels {
		if key == except || (node != "" && vc.st.Node != node) {
			continue
		}
		if vc.st.Running() {
			n++
		}
	}
	return n
}

// entered is when channel key started running, or def if not known to run.
func (v *clusterView) entered(key string, def uint64) uint64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if vc, ok := v.channels[key]; ok && vc.st.Running() && vc.entered != 0 {
		return vc.entered
	}
	return def
}

// runningBefore counts channels other than key that started running
// before State bucket revision rev.
func (v *clusterView) runningBefore(key string, rev uint64) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for k, vc := range v.channels {
		if k != key && vc.st.Running() && vc.entered < rev {
			n++
		}
	}
	return n
}

// capacity is the cluster's session cap (MaxSessions) as this node applies
// it, and the head start that spreads channels over the nodes.
type capacity struct {
	view *clusterView
	node string
	max  int // 0: no cap
}

// over reports whether opening channel key would exceed the cap. It is a
// first look, to avoid needless leases; taken is the rule.
func (c capacity) over(key string) bool {
	return c.max > 0 && c.view.running("", key) >= c.max
}

// taken reports whether channel key, which went to "starting" at State
// revision rev, must give way under the cap: whether max other channels
// started running before it. Every node orders channels by the same
// revisions, so when several start at once the later ones give way and the
// cap holds across the cluster.
func (c capacity) taken(ctx context.Context, key string, rev uint64) bool {
	if c.max <= 0 {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	c.view.caughtUp(cctx, rev) // if the watch lags, judge on what we know
	return c.view.runningBefore(key, c.view.entered(key, rev)) >= c.max
}

// fairDelay is how long to wait before competing for a free lease: nodes
// already running sessions wait longer, so channels spread over nodes.
func (c capacity) fairDelay() time.Duration {
	n := min(c.view.running(c.node, ""), 10)
	return time.Duration(n)*50*time.Millisecond + rand.N(50*time.Millisecond)
}

// failures are the channels whose session failed permanently, each under
// the configuration it failed with: not retried until that changes.
type failures struct {
	mu sync.Mutex
	m  map[string]failure // by lease key
}

type failure struct {
	cfg chanConfig
	msg string
}

func newFailures() *failures { return &failures{m: map[string]failure{}} }

// get returns the failure of channel key under cfg, if any.
func (f *failures) get(key string, cfg chanConfig) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[key]
	if !ok || !e.cfg.equal(cfg) {
		return "", false
	}
	return e.msg, true
}

func (f *failures) set(key string, cfg chanConfig, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[key] = failure{cfg: cfg, msg: msg}
}

// forgetRoom drops the failures of a deleted room's channels.
func (f *failures) forgetRoom(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, e := range f.m {
		if e.cfg.ch.Room == id {
			delete(f.m, key)
		}
	}
}
