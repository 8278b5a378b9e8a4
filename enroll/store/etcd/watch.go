package etcd

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Queues WatchDue knows: the outbox of messages and the mail queue.
const (
	QueueOutbox = "outbox"
	QueueMail   = "mail"
)

// watchRetry is how long WatchDue waits before it watches again after the
// watch ended with an error (the cluster lost its quorum, the revision was
// compacted, the client closed).
const watchRetry = time.Second

// WatchDue calls wake each time any node (this store or another on the same
// prefix) writes an entry of queue's due index (QueueOutbox or QueueMail):
// a message or mail queued or put back for a later attempt. It watches
// until ctx ends, restarting the watch after an error or a compaction,
// and returns at once: the watch runs in its own goroutine. wake must not
// block. An unknown queue watches nothing.
func (s *Store) WatchDue(ctx context.Context, queue string, wake func()) {
	var prefix string
	switch queue {
	case QueueOutbox:
		prefix = duePrefix
	case QueueMail:
		prefix = mailDuePrefix
	default:
		return
	}
	go s.watchDue(ctx, s.prefix+prefix, wake)
}

func (s *Store) watchDue(ctx context.Context, key string, wake func()) {
	for ctx.Err() == nil {
		// The watch's own context: leader-required so that a member cut
		// from the quorum ends the watch instead of keeping it silent.
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range s.cli.Watch(wctx, key, clientv3.WithPrefix(), clientv3.WithFilterDelete()) {
			if resp.Err() != nil || resp.Canceled {
				break
			}
			if len(resp.Events) > 0 {
				wake()
			}
		}
		cancel()
		// After a break anything may have been queued unseen: one wake
		// costs one pass.
		wake()
		t := time.NewTimer(watchRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
