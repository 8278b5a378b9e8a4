package layout_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll/store/layout"
	"github.com/replyreset/replyreset/enroll/store/layout/layouttest"
)

// TestStreamRoundTrip: what Writer writes, Read reads back record for
// record, with the header's counts and the TTL expiries Expiry gives.
func TestStreamRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	recs := []layout.Record{
		layout.NewRecord(layout.KeySchema, []byte(layout.SchemaVersion)),
		layout.NewRecord(layout.Enrollments+"jdoe", []byte(`{"username":"jdoe"}`)),
		layout.NewRecord(layout.Messages+"SM1", layout.NanoValue(now.Add(time.Hour).UnixNano())),
		layout.NewRecord(layout.RateLimit+"k", []byte(`{"window":60000000000,"hits":[`+string(layout.NanoValue(now.UnixNano()))+`]}`)),
		layout.NewRecord(layout.Guard+"g", []byte(`{"until":`+string(layout.NanoValue(now.Add(2*time.Hour).UnixNano()))+`,"window":60000000000,"hits":[]}`)),
		layout.NewRecord(layout.Sessions+"s", []byte(`{"username":"a","expires_at":"2027-01-15T08:00:00Z"}`)),
		layout.NewRecord(layout.OutboxDue+"0/"+layout.TimeKey(now)+"/"+layout.IDKey(7), nil),
	}
	stream, counts := layouttest.Stream(t, recs)
	var got []layout.Record
	h, read, err := layout.Read(bytes.NewReader(stream), func(r layout.Record) error { got = append(got, r); return nil })
	if err != nil || h.Format != layout.Format || h.Source != "test" || !read.Equal(counts) || len(got) != len(recs) {
		t.Fatalf("Read = %+v, %s, %d records, %v", h, read, len(got), err)
	}
	wantExp := []int64{0, 0, now.Add(time.Hour).UnixNano(), now.Add(time.Minute).UnixNano(), now.Add(2 * time.Hour).UnixNano(),
		time.Date(2027, 1, 15, 8, 0, 0, 0, time.UTC).UnixNano(), 0}
	for i, r := range got {
		if r.Key != recs[i].Key || !bytes.Equal(r.Value, recs[i].Value) || r.Expires != wantExp[i] {
			t.Errorf("record %d = %s %q exp %d, want %s %q exp %d", i, r.Key, r.Value, r.Expires, recs[i].Key, recs[i].Value, wantExp[i])
		}
	}
	if life, ttl := got[2].TTL(now); !ttl || life != time.Hour {
		t.Errorf("TTL = %v, %v; want 1h", life, ttl)
	}
	if _, ttl := got[1].TTL(now); ttl {
		t.Error("an enrollment has a TTL")
	}
	if s := counts.String(); !strings.Contains(s, "enrollments 1") || counts.Total() != len(recs) {
		t.Errorf("counts %s (total %d)", s, counts.Total())
	}
}

// TestReadRefuses: an empty stream, another format, a damaged line and
// counts that do not match the header are each a specific ErrStream; the
// etcd backup of before the layout (no counts, no TTLs) still reads.
func TestReadRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "it is empty"},
		{"other format", `{"format":"something-else"}` + "\n", `format "something-else"`},
		{"not JSON", "hello\n", "is not a " + layout.Format + " header"},
		{"damaged", `{"format":"replyreset-layout-1"}` + "\n" + `{"k":"a/b","v":"AA=="}` + "\n{oops\n", "record 2 is damaged"},
		{"no key", `{"format":"replyreset-layout-1"}` + "\n" + `{"v":"AA=="}` + "\n", "record 1 is damaged"},
		{"truncated", `{"format":"replyreset-layout-1","counts":{"audit":2}}` + "\n" + `{"k":"audit/1","v":"e30="}` + "\n", "truncated or altered: the header counts audit 2, the stream holds audit 1"},
	} {
		_, _, err := layout.Read(strings.NewReader(tc.in), nil)
		if !errors.Is(err, layout.ErrStream) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Read = %v, want ErrStream saying %q", tc.name, err, tc.want)
		}
	}
	legacy := `{"format":"replyreset-etcd-1","revision":42}` + "\n" + `{"k":"meta/schema","v":"MQ=="}` + "\n"
	h, n, err := layout.Read(strings.NewReader(legacy), nil)
	if err != nil || h.Revision != 42 || n.Total() != 1 {
		t.Errorf("Read of an etcd backup of before = %+v, %s, %v", h, n, err)
	}
	stop := errors.New("stop")
	if _, _, err := layout.Read(strings.NewReader(legacy), func(layout.Record) error { return stop }); err != stop {
		t.Errorf("fn's error came back as %v", err)
	}
}

// TestExpiry: the TTL kinds and their ends; a window without hits has
// ended; an undecodable value has no TTL; other kinds have none.
func TestExpiry(t *testing.T) {
	for _, tc := range []struct {
		key, val string
		ns       int64
		ttl      bool
	}{
		{layout.Messages + "SM1", "1000", 1000, true},
		{layout.RateLimit + "k", `{"window":10,"hits":[5,20]}`, 30, true},
		{layout.RateLimit + "k", `{"window":10,"hits":[]}`, math.MinInt64, true},
		{layout.RateLimit + "k", `{"window":10,"hits":[9223372036854775800]}`, math.MaxInt64, true},
		{layout.Guard + "g", `{"until":500,"window":10,"hits":[5]}`, 500, true},
		{layout.Guard + "g", `junk`, 0, false},
		{layout.Enrollments + "jdoe", `{}`, 0, false},
		{layout.Leases + "outbox", `{}`, 0, false},
	} {
		ns, ttl := layout.Expiry(tc.key, []byte(tc.val))
		if ns != tc.ns || ttl != tc.ttl {
			t.Errorf("Expiry(%s, %s) = %d, %v; want %d, %v", tc.key, tc.val, ns, ttl, tc.ns, tc.ttl)
		}
	}
	if !layout.Live(layout.Leader+"x") || !layout.Live(layout.Leases+"x") || layout.Live(layout.Enrollments+"x") {
		t.Error("Live is wrong")
	}
	if k := layout.Kind(layout.SeqPrefix + "audit"); k != "meta" {
		t.Errorf("Kind = %s", k)
	}
	if a, b := layout.TimeKey(time.Unix(-1, 0)), layout.TimeKey(time.Unix(1, 0)); a >= b {
		t.Errorf("TimeKey does not sort: %s >= %s", a, b)
	}
}
