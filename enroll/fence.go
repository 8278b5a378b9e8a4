package enroll

import (
	"context"
	"errors"
)

// ErrFenced is returned by a store write made under a Fence that no longer
// holds: the leader that made it was deposed (paused, partitioned, slow),
// and nothing was written. The job that got it must stop; the new leader
// does the work.
var ErrFenced = errors.New("enroll: fenced: this node no longer leads")

// Fence names the leadership a background job's writes depend on: the
// election key of the term and the revision at which it was created.
// A store shared by several nodes (etcd) makes every write under a fence
// conditional on that key still existing at that revision, in the same
// transaction, so a deposed leader can never text a lockout twice or send
// a queued message twice. A store only one process can open (bbolt) has
// nothing to fence against and ignores it.
type Fence struct {
	Key      string // the election key of the term
	Revision int64  // its creation revision
}

type fenceKey struct{}

// WithFence returns ctx carrying f: every store write made with it is
// fenced by f (see Fence).
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceFrom returns the fence ctx carries, if any.
func FenceFrom(ctx context.Context) (Fence, bool) {
	f, ok := ctx.Value(fenceKey{}).(Fence)
	return f, ok && f.Key != ""
}
