package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/replyreset/replyreset/gateway/jobs"
)

// healthBody is /healthz's answer, as a client reads it.
type healthBody struct {
	Status string
	Leader *bool `json:"leader"`
	Store  struct {
		Backend string `json:"backend"`
		OK      *bool  `json:"ok"`
		Took    string `json:"took"`
	} `json:"store"`
	Directory struct{ OK bool }
}

func getHealth(t *testing.T, d Deps) healthBody {
	t.Helper()
	rec := serve(t, d, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var b healthBody
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("not JSON: %v: %s", err, rec.Body)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("/healthz %d: %s", rec.Code, rec.Body)
	}
	return b
}

func TestHealthzLeaderAndStore(t *testing.T) {
	ok := pingFunc(func(context.Context) error { return nil })
	var status jobs.Status
	d := Deps{Directory: ok, Store: pingStore{ping: ok}, Leader: &status}

	// Not leading yet (no term won): healthy all the same.
	b := getHealth(t, d)
	if b.Leader == nil || *b.Leader || b.Store.Backend != "bolt" || b.Store.OK == nil || !*b.Store.OK || b.Status != "ok" {
		t.Errorf("before leading: %+v; want leader false, store {backend bolt, ok true}", b)
	}

	// While jobs.Run leads (one node: at once), "leader" is true.
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		status.Run(ctx, jobs.NewSingleNode("node-a"), nil, jobs.Job{Name: "probe", Run: func(ctx context.Context) error {
			close(started)
			<-ctx.Done()
			return nil
		}})
		close(done)
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the job never started")
	}
	if b := getHealth(t, d); b.Leader == nil || !*b.Leader {
		t.Errorf("while leading: leader %v, want true", b.Leader)
	}
	cancel()
	<-done
	if b := getHealth(t, d); b.Leader == nil || *b.Leader {
		t.Errorf("after the jobs stopped: leader %v, want false", b.Leader)
	}

	// The backend is said as configured; no Leader: false.
	d = Deps{Directory: ok, Store: pingStore{ping: ok}, StoreBackend: "etcd"}
	if b := getHealth(t, d); b.Store.Backend != "etcd" || b.Leader == nil || *b.Leader {
		t.Errorf("etcd, no jobs here: %+v", b)
	}
}
