// Package kvwatch turns a JetStream KV watch into a channel of the values
// its entries hold, for the stores that hand their callers values rather
// than KV entries (rooms, questions).
package kvwatch

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// Decoded sends what decode makes of each entry w delivers, in order,
// until ctx ends or NATS ends the watch; then it stops w and closes the
// channel, which buffers size values. The marker that ends a watch's
// initial values is skipped, and so is an entry decode refuses (ok false):
// decode sees deletions and purges too, as entries whose Operation is not
// jetstream.KeyValuePut. A slow reader delays the watch; NATS buffers for
// it.
func Decoded[T any](ctx context.Context, w jetstream.KeyWatcher, size int, decode func(jetstream.KeyValueEntry) (T, bool)) <-chan T {
	out := make(chan T, size)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue // end of the initial values
				}
				v, ok := decode(e)
				if !ok {
					continue
				}
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}
