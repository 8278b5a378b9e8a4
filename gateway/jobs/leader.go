package jobs

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/replyreset/replyreset/enroll"
)

// Leader decides which process runs the singleton jobs. A single node
// leads at once and forever (SingleNode); several nodes elect one
// (gateway/jobs/election, on etcd), and Run neither knows nor cares which.
type Leader interface {
	// Campaign blocks until this process leads, or ctx ends (it then
	// returns ctx's error), and returns the term it leads for.
	Campaign(ctx context.Context) (Term, error)
}

// Term is one period of leadership.
type Term interface {
	// Done is closed when the leadership is lost (or resigned).
	Done() <-chan struct{}
	// Leader names the process that leads (its node ID).
	Leader() string
	// Revision tells terms apart and grows from one to the next: an
	// election's key revision, which the leader's writes can later be
	// made conditional on (fencing).
	Revision() int64
	// Fence is what the term's writes are made conditional on: Run puts
	// it in every job's context (enroll.WithFence), and a shared store
	// refuses a write under a fence that no longer holds with an error
	// wrapping enroll.ErrFenced. A single node has nothing to fence
	// against: its Fence is the zero one (Key "").
	Fence() enroll.Fence
	// Resign gives the leadership up, so that another node may take it
	// at once; Done is then closed.
	Resign(ctx context.Context) error
}

// SingleNode is the Leader of a process that runs alone: every Campaign
// wins at once, and a term lasts until it is resigned.
type SingleNode struct {
	node string
	rev  atomic.Int64
}

var _ Leader = (*SingleNode)(nil)

// NewSingleNode returns the leader of the one node node (NodeID when "").
func NewSingleNode(node string) *SingleNode {
	if node == "" {
		node = NodeID()
	}
	return &SingleNode{node: node}
}

// Campaign returns a new term at once, unless ctx has ended.
func (s *SingleNode) Campaign(ctx context.Context) (Term, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &localTerm{node: s.node, rev: s.rev.Add(1), done: make(chan struct{})}, nil
}

// localTerm is a term that ends only when it is resigned.
type localTerm struct {
	node string
	rev  int64
	once sync.Once
	done chan struct{}
}

func (t *localTerm) Done() <-chan struct{} { return t.done }
func (t *localTerm) Leader() string        { return t.node }
func (t *localTerm) Revision() int64       { return t.rev }
func (t *localTerm) Fence() enroll.Fence   { return enroll.Fence{} }

func (t *localTerm) Resign(context.Context) error {
	t.once.Do(func() { close(t.done) })
	return nil
}
