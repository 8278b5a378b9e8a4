package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
)

// unreachableStore is a real bbolt store that, while down is set, answers
// Ping and the activation reads as an etcd store without quorum does:
// an error wrapping enroll.ErrUnavailable.
type unreachableStore struct {
	*bolt.Store
	down atomic.Bool
}

func (s *unreachableStore) fail() error {
	if s.down.Load() {
		return fmt.Errorf("etcd: %w: context deadline exceeded", enroll.ErrUnavailable)
	}
	return nil
}

func (s *unreachableStore) Ping(ctx context.Context) error {
	if err := s.fail(); err != nil {
		return err
	}
	return s.Store.Ping(ctx)
}

func (s *unreachableStore) ActivationByToken(ctx context.Context, hash string) (enroll.Activation, error) {
	if err := s.fail(); err != nil {
		return enroll.Activation{}, err
	}
	return s.Store.ActivationByToken(ctx, hash)
}

// gatedApp is the enrollment site and API over unreachableStore, behind
// a store gate whose probe the test runs by hand (Probe).
func gatedApp(t *testing.T) (*enrollApp, *unreachableStore, *StoreGate) {
	t.Helper()
	var us *unreachableStore
	var gate *StoreGate
	a := newEnrollApp(t, gateTuning(&us, &gate))
	return a, us, gate
}

// gateTuning puts the app's store behind unreachableStore and a store
// gate, and hands both back through us and gate.
func gateTuning(us **unreachableStore, gate **StoreGate) func(appTuning) {
	return func(tu appTuning) {
		*us = &unreachableStore{Store: tu.deps.Store.(*bolt.Store)}
		tu.deps.Store = *us
		tu.web.Store = *us
		*gate = NewStoreGate(StoreGateConfig{Store: *us})
		tu.web.StoreGate = *gate
		tu.web.Directory = pingFunc(func(context.Context) error { return nil })
	}
}

// wantStoreDown checks the gate's page: 503, Retry-After, the message in
// lang, in the site's HTML layout.
func wantStoreDown(t *testing.T, what string, r answer, lang string) {
	t.Helper()
	r.want(t, what, http.StatusServiceUnavailable, "<html", pageText(t, lang, "err.store.title", nil),
		pageText(t, lang, "err.store.text", nil))
	if r.header.Get("Retry-After") == "" {
		t.Errorf("%s: no Retry-After", what)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("%s: Content-Type %q, want HTML", what, r.header.Get("Content-Type"))
	}
}

// TestStoreGateRefusesWorkAndRecovers (issue 17 item 5): while the store
// does not answer, every page answers 503 HTML "try again in a few
// minutes" in the visitor's language, /api/ 503 JSON with the same
// message, /healthz still answers (503 degraded); once a probe succeeds
// everything answers again, with no restart.
func TestStoreGateRefusesWorkAndRecovers(t *testing.T) {
	a, us, gate := gatedApp(t)
	link := a.activate("jdoe")
	en, fr := a.browser("en"), a.browser("fr")
	en.get("/").want(t, "start page, store up", http.StatusOK)
	en.get(link).want(t, "enrollment page, store up", http.StatusOK)

	us.down.Store(true)
	if err := gate.Probe(t.Context()); err == nil {
		t.Fatal("Probe of a store that does not answer succeeded")
	}
	if gate.Available() {
		t.Fatal("the gate is open after a failed probe")
	}
	wantStoreDown(t, "start page, store down", en.get("/"), "en")
	wantStoreDown(t, "start page in French, store down", fr.get("/"), "fr")
	wantStoreDown(t, "enrollment page, store down", en.get(link), "en")
	wantStoreDown(t, "unknown page, store down", en.get("/no/such/page"), "en")
	wantStoreDown(t, "form post, store down", en.post(link+"/phone", nil), "en")

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/enrollments", nil)
	a.handler.ServeHTTP(rec, req)
	var body apiErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusServiceUnavailable ||
		body.Error.Code != "store_unavailable" || !strings.Contains(body.Error.Message, "try again in a few minutes") ||
		rec.Header().Get("Retry-After") == "" {
		t.Errorf("/api/ with the store down: %d %s (Retry-After %q); want 503 JSON store_unavailable",
			rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}

	rec = httptest.NewRecorder()
	a.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"degraded"`) ||
		!strings.Contains(rec.Body.String(), "store is unavailable") {
		t.Errorf("/healthz with the store down: %d %s; want 503 degraded naming the store", rec.Code, rec.Body)
	}

	us.down.Store(false)
	if err := gate.Probe(t.Context()); err != nil {
		t.Fatalf("Probe of a store that answers again: %v", err)
	}
	en.get("/").want(t, "start page, store back", http.StatusOK)
	en.get(link).want(t, "enrollment page, store back", http.StatusOK)
}

// TestStoreGateClosesOnAStoreCall: a store call that reports
// ErrUnavailable answers its page with the store's 503 and closes the
// gate at once (before any probe), until a probe succeeds.
func TestStoreGateClosesOnAStoreCall(t *testing.T) {
	a, us, gate := gatedApp(t)
	link := a.activate("jdoe")
	en := a.browser("en")
	us.down.Store(true) // no probe yet: the gate is open
	wantStoreDown(t, "enrollment page whose read fails", en.get(link), "en")
	if gate.Available() {
		t.Fatal("a store call answered ErrUnavailable and the gate stayed open")
	}
	us.down.Store(false)
	wantStoreDown(t, "start page before the next probe", en.get("/"), "en")
	if err := gate.Probe(t.Context()); err != nil {
		t.Fatal(err)
	}
	en.get(link).want(t, "enrollment page after the probe", http.StatusOK)
}

// clusterOf answers StoreHealth with a fixed cluster.
type clusterOf ClusterHealth

func (c clusterOf) StoreHealth(context.Context) (ClusterHealth, error) { return ClusterHealth(c), nil }

// TestHealthzStoreMembers: with a StoreHealth, /healthz lists the
// cluster's members and how many answered.
func TestHealthzStoreMembers(t *testing.T) {
	ok := pingFunc(func(context.Context) error { return nil })
	d := Deps{Directory: ok, Store: pingStore{ping: ok}, StoreBackend: "etcd", StoreHealth: clusterOf{
		Reachable: 2, Members: []ClusterMember{{Name: "m0", Reachable: true, Leader: true}, {Name: "m1", Reachable: true},
			{Name: "m2", Error: "connection refused"}}}}
	rec := serve(t, d, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	var b struct {
		Store struct {
			Backend   string          `json:"backend"`
			Members   []ClusterMember `json:"members"`
			Reachable *int            `json:"reachable"`
		} `json:"store"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if b.Store.Backend != "etcd" || len(b.Store.Members) != 3 || b.Store.Reachable == nil || *b.Store.Reachable != 2 ||
		!b.Store.Members[0].Leader || b.Store.Members[2].Reachable {
		t.Errorf("/healthz store = %s", rec.Body)
	}
}
