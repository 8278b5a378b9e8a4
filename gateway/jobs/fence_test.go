package jobs_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/jobs"
)

func TestSingleNodeHasNoFence(t *testing.T) {
	term, err := jobs.NewSingleNode("node-a").Campaign(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if f := term.Fence(); f != (enroll.Fence{}) {
		t.Errorf("a single node's fence = %+v, want the zero one", f)
	}
	seen := make(chan bool, 1)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		jobs.Run(ctx, jobs.NewSingleNode("node-a"), nil, jobs.Job{Name: "probe", Run: func(ctx context.Context) error {
			_, ok := enroll.FenceFrom(ctx)
			seen <- ok
			<-ctx.Done()
			return nil
		}})
		close(done)
	}()
	if <-seen {
		t.Error("a single node's job runs under a fence")
	}
	cancel()
	wait(t, done, "Run returned")
}

func TestRunFencesTheJobsAndStopsTheTermWhenFenced(t *testing.T) {
	l := &scriptedLeader{terms: make(chan *scriptedTerm)}
	var status jobs.Status
	fences := make(chan enroll.Fence, 10)
	steady := newProbe("lockout watch")
	fencedRuns := make(chan struct{}, 10)
	fenced := jobs.Job{Name: "outbox", Run: func(ctx context.Context) error {
		f, _ := enroll.FenceFrom(ctx)
		fences <- f
		fencedRuns <- struct{}{}
		if f.Revision == 1 {
			// A store write under the first term's fence is refused.
			return fmt.Errorf("outbox: update message 7: %w", enroll.ErrFenced)
		}
		<-ctx.Done()
		return nil
	}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { status.Run(ctx, l, nil, steady.job(), fenced); close(done) }()

	if status.Leading() {
		t.Error("Leading before any term")
	}
	first := &scriptedTerm{rev: 1, fence: enroll.Fence{Key: "/replyreset/leader/1", Revision: 1}, done: make(chan struct{})}
	l.terms <- first
	wait(t, steady.started, "the jobs started with the term")
	wait(t, fencedRuns, "the fenced job ran")
	// The fenced job's error stops the whole term: the other job too, and
	// the term is resigned so that the election agrees.
	wait(t, steady.stopped, "the other job stopped when one was fenced")
	wait(t, first.done, "the fenced term was resigned")
	if status.Leading() {
		t.Error("Leading after the term was fenced")
	}

	second := &scriptedTerm{rev: 2, fence: enroll.Fence{Key: "/replyreset/leader/2", Revision: 2}, done: make(chan struct{})}
	l.terms <- second // Run campaigns again
	wait(t, steady.started, "the jobs started again with the next term")
	wait(t, fencedRuns, "the formerly fenced job ran again")
	if !status.Leading() {
		t.Error("not Leading while a term runs")
	}
	cancel()
	wait(t, done, "Run returned")
	if status.Leading() {
		t.Error("Leading after Run returned")
	}
	if a, b := <-fences, <-fences; a != first.fence || b != second.fence {
		t.Errorf("the job ran under the fences %+v and %+v, want each term's: %+v, %+v", a, b, first.fence, second.fence)
	}
}
