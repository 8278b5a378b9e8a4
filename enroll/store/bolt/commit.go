package bolt

import (
	"fmt"
	"sync"

	"go.etcd.io/bbolt"
)

// groupCommit runs concurrent write functions in shared bbolt transactions,
// so that many writers pay for one fsync instead of one each. It adds no
// delay: a writer that finds no commit running commits at once, alone;
// writers that arrive while a commit runs are committed together next.
// The result is the same as running the functions one after another.
type groupCommit struct {
	db *bbolt.DB

	commitMu sync.Mutex // held by the writer committing a batch

	queueMu sync.Mutex
	queue   []*writeReq
}

type writeReq struct {
	fn   func(*bbolt.Tx) error
	done chan error // buffered: the committer never blocks on it
}

// update runs fn in a write transaction that commits before update returns.
// fn may be run more than once (on a rolled-back transaction first), so it
// must have no effect outside the transaction but its return values.
func (g *groupCommit) update(fn func(*bbolt.Tx) error) error {
	req := &writeReq{fn: fn, done: make(chan error, 1)}
	g.queueMu.Lock()
	g.queue = append(g.queue, req)
	g.queueMu.Unlock()

	g.commitMu.Lock()
	select {
	case err := <-req.done: // the previous committer took our request along
		g.commitMu.Unlock()
		return err
	default:
	}
	g.queueMu.Lock()
	batch := g.queue
	g.queue = nil
	g.queueMu.Unlock()
	g.commit(batch)
	g.commitMu.Unlock()
	return <-req.done
}

// commit runs batch in as few transactions as possible. When a function
// fails, the ones before it are committed without it and it is run again,
// first in the next transaction, on the very state it failed on.
func (g *groupCommit) commit(batch []*writeReq) {
	for len(batch) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bbolt.Tx) error {
			for i, r := range batch {
				if err := safeCall(r.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		switch {
		case err == nil:
			deliver(batch, nil)
			return
		case failed < 0: // bbolt could not begin or commit: nobody's write happened
			deliver(batch, err)
			return
		case failed == 0:
			batch[0].done <- err
			batch = batch[1:]
		default:
			g.commit(batch[:failed])
			batch = batch[failed:]
		}
	}
}

func deliver(batch []*writeReq, err error) {
	for _, r := range batch {
		r.done <- err
	}
}

// safeCall turns a panic in fn into an error, so one bad write cannot leave
// the other writers of its batch waiting forever.
func safeCall(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("enroll: write panicked: %v", p)
		}
	}()
	return fn(tx)
}
