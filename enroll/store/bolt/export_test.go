package bolt_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/enroll/store/layout"
	"github.com/replyreset/replyreset/enroll/store/layout/layouttest"
)

// TestExportLayout: a data file filled with a record of every kind
// through the store's API exports, read-only, as the layout stream the
// etcd store reads: the header counts what follows, every kind is there
// and the job lease is not, the bbolt encodings (big-endian IDs, ordered
// times, binary windows) come out as the etcd store's keys and values,
// TTL records carry their expiry, and the file is left byte for byte
// as it was.
func TestExportLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replyreset.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := enroll.LoadOrCreateKey(filepath.Join(filepath.Dir(path), "replyreset.key"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	fx := layouttest.Fill(t, s, sealer, now)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	ro, err := bolt.Open(path, bolt.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	counts, err := ro.Export(t.Context(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.PutEnrollment(t.Context(), fx.Enrollments[0]); err == nil {
		t.Error("a read-only store wrote an enrollment")
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("the read-only open and export changed the data file")
	}
	t.Logf("exported %d bytes: %s", buf.Len(), counts)

	recs := map[string]layout.Record{}
	h, read, err := layout.Read(bytes.NewReader(buf.Bytes()), func(r layout.Record) error { recs[r.Key] = r; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if h.Format != layout.Format || h.Source != "bolt:"+path || !h.Counts.Equal(counts) || !read.Equal(counts) {
		t.Errorf("header %+v, read %s; want format %s, source bolt:%s, counts %s", h, read, layout.Format, path, counts)
	}
	layouttest.WantCounts(t, "export", counts)

	id := func(n uint64) string { return layout.IDKey(n) }
	want := map[string]string{ // key → value, as the etcd store writes them
		layout.KeySchema:                                                   layout.SchemaVersion,
		layout.KeySealKey:                                                  sealer.Fingerprint(),
		layout.SeqPrefix + "audit":                                         "3",
		layout.Phones + "+12015550171":                                     "adupont",
		layout.OptOut + "+12015550199":                                     string(layout.NanoValue(now.UnixNano())),
		layout.Messages + fx.ExpiredSID:                                    string(layout.NanoValue(now.Add(time.Second).UnixNano())),
		layout.OutboxProvider + fx.Message.ProviderID:                      string(layout.NanoValue(int64(fx.Message.ID))),
		layout.Monitor + "lockout-cursor":                                  "usnchanged=4242",
		layout.Lockouts + layout.TimeKey(now.Add(-time.Hour)) + "/adupont": string(layout.NanoValue(now.UnixNano())),
		layout.Reminders + layout.TimeKey(now.Add(5*24*time.Hour)) + "/003/bmartin": string(layout.NanoValue(now.UnixNano())),
		layout.OutboxDue + "0/" + layout.TimeKey(now) + "/" + id(fx.Message.ID):     "",
		layout.MailDue + layout.TimeKey(now) + "/" + id(fx.Mail.ID):                 "",
		layout.SMSChecksDue + layout.TimeKey(fx.SMSCheck.Due) + "/adupont":          "",
		layout.APITokenHashes + fx.APIHash:                                          fx.APIToken.ID,
		layout.RateLimit + "sms:+12015550171":                                       `{"window":3600000000000,"hits":[` + string(layout.NanoValue(now.UnixNano())) + `]}`,
	}
	for k, v := range want {
		if r, ok := recs[k]; !ok || string(r.Value) != v {
			t.Errorf("%s = %q (present %v), want %q", k, r.Value, ok, v)
		}
	}
	var ev enroll.Event
	if r := recs[layout.Audit+id(fx.Events[2].Seq)]; json.Unmarshal(r.Value, &ev) != nil || ev.Action != fx.Events[2].Action {
		t.Errorf("audit event %d = %s, want %+v", fx.Events[2].Seq, r.Value, fx.Events[2])
	}
	ttls := map[string]time.Time{
		layout.Messages + fx.ExpiredSID:         now.Add(time.Second),
		layout.RateLimit + "sms:+12015550171":   now.Add(time.Hour),
		layout.Guard + "code:cnguyen":           now.Add(time.Hour),
		layout.Sessions + layouttest.SessionKey: fx.Session.ExpiresAt,
	}
	for k, exp := range ttls {
		if r := recs[k]; r.Expires != exp.UnixNano() {
			t.Errorf("%s expires at %d, want %d (%v)", k, r.Expires, exp.UnixNano(), exp)
		}
	}
	for k, r := range recs {
		if r.Expires != 0 && !strings.HasPrefix(k, layout.Messages) && !strings.HasPrefix(k, layout.RateLimit) &&
			!strings.HasPrefix(k, layout.Guard) && !strings.HasPrefix(k, layout.Sessions) {
			t.Errorf("%s has a TTL (%d), its kind has none", k, r.Expires)
		}
	}

	// A truncated stream is refused by the one reader.
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	cut := bytes.Join(lines[:len(lines)-3], nil)
	if _, _, err := layout.Read(bytes.NewReader(cut), nil); !errors.Is(err, layout.ErrStream) || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("Read of a truncated stream = %v, want a truncation error", err)
	}
}

// TestReadOnlyOpen: a read-only open of a file another store holds fails
// with ErrInUse, of a missing file with fs.ErrNotExist, and of a file
// that is not a bbolt file with an error; none creates anything.
func TestReadOnlyOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "replyreset.db")
	held, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Open(path, bolt.ReadOnly(), bolt.WithLockTimeout(100*time.Millisecond)); !errors.Is(err, bolt.ErrInUse) {
		t.Errorf("read-only open of a held file = %v, want ErrInUse", err)
	}
	held.Close()
	missing := filepath.Join(dir, "none.db")
	if _, err := bolt.Open(missing, bolt.ReadOnly()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read-only open of a missing file = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the read-only open created %s", missing)
	}
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not bbolt "), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := bolt.Open(junk, bolt.ReadOnly()); err == nil {
		s.Close()
		t.Error("read-only open of a file that is not bbolt succeeded")
	}
}
