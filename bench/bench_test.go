package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/password"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ldaplab.StopAll()
	ldaplab.ReportSkipped(code)
	var table bytes.Buffer
	writeTable(&table, testing.Short())
	os.Stdout.Write(table.Bytes())
	if path := os.Getenv("REPLYRESET_BENCH_RECORD"); path != "" && code == 0 && table.Len() > 0 {
		if err := recordTable(path, table.Bytes()); err != nil {
			fmt.Fprintln(os.Stderr, "bench: record the table:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// size picks a fixture size: full for make bench, short under -short
// (make test runs every benchmark once that way, so none can rot).
func size(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

const (
	authToken = "bench-auth-token-0123456789abcdef"
	publicURL = "https://reset.example.test"
)

type fixture struct {
	lab    *ldaplab.Server
	dcfg   directory.Config
	store  *bolt.Store
	users  []string // usernames, enrolled with phones[i]
	phones []string
	srv    *httptest.Server
	client *http.Client
	gen    *password.Generator
	sid    atomic.Int64
}

func newFixture(b *testing.B, lab *ldaplab.Server, nUsers int) *fixture {
	f := &fixture{lab: lab}
	f.dcfg = lab.DirectoryConfig()
	dir, err := directory.New(f.dcfg, directory.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dir.Close() })
	store, err := bolt.Open(filepath.Join(b.TempDir(), "replyreset.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	f.store = store
	f.gen, err = password.NewGenerator(password.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	catalog, err := templates.LoadCatalog()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < nUsers; i++ {
		name := lab.UniqueName("bench")
		lab.AddUser(b, ldaplab.UserSpec{Username: name, Password: "Bench#Pass1x", DisplayName: "Bench User"})
		phone := fmt.Sprintf("+1201555%04d", 1000+i)
		if err := store.PutEnrollment(context.Background(), enroll.Enrollment{Username: name, Phone: phone, Language: "en",
			State: enroll.StateActive, Method: "helpdesk", CreatedAt: now, UpdatedAt: now, VerifiedAt: now}); err != nil {
			b.Fatal(err)
		}
		f.users, f.phones = append(f.users, name), append(f.phones, phone)
	}
	sealer, err := enroll.NewSealer(make([]byte, 64))
	if err != nil {
		b.Fatal(err)
	}
	wh := gateway.NewWebhook(gateway.Settings{PublicURL: publicURL, AuthToken: authToken, MaxResetsPerHour: 1 << 30,
		Password: directory.SetPasswordOptions{MustChange: true, Unlock: true}, Outbox: outbox.NewQueue(store, sealer, nil)},
		gateway.WebhookDeps{Store: store, Directory: dir, Generator: f.gen, Catalog: catalog})
	f.srv = httptest.NewServer(web.NewEcho(web.Deps{SMSWebhook: wh, Directory: dir}))
	b.Cleanup(f.srv.Close)
	f.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return f
}

// webhook posts one signed inbound SMS and returns the messages of its
// TwiML reply; any answer but 200 is an error. What the command did is
// read from the audit trail (okEvents), not from the reply's wording.
func (f *fixture) webhook(from, body string) ([]string, error) {
	form := url.Values{"MessageSid": {fmt.Sprintf("SM%032x", f.sid.Add(1))}, "From": {from},
		"To": {"+12015550000"}, "Body": {body}}
	status, msgs, raw, err := twiliotest.PostSMS(context.Background(), f.client, f.srv.URL+"/sms/twilio",
		publicURL+"/sms/twilio", authToken, form)
	if err != nil {
		return nil, err
	}
	if status != 200 {
		return nil, fmt.Errorf("%s: status %d: %s", body, status, raw)
	}
	return msgs, nil
}

// okEvents counts the audit events of action with outcome ok.
func (f *fixture) okEvents(b *testing.B, action string) int { return okEvents(b, f.store, action) }

// wantDone fails the benchmark unless n more action events succeeded
// since before: a benchmark whose operations fail measures nothing.
func (f *fixture) wantDone(b *testing.B, action string, before, n int) {
	if got := f.okEvents(b, action) - before; got != n {
		b.Fatalf("%d of %d %s commands succeeded (audit trail)", got, n, action)
	}
}

// rawReset is the same directory work done directly with go-ldap: find the
// user, then set the password, must-change and unlock (AD: one modify;
// OpenLDAP: the Password Modify operation, pwdReset, then the lockout
// cleared, as the gateway does).
func (f *fixture) rawReset(conn *ldap.Conn, username string) error {
	attr := f.dcfg.EffectiveUsernameAttribute()
	res, err := conn.Search(ldap.NewSearchRequest(f.dcfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 10, false,
		"(&"+f.dcfg.EffectiveUserFilter()+"("+attr+"="+ldap.EscapeFilter(username)+"))",
		[]string{attr, "displayName", "mail", "mobile", "lockoutTime", "msDS-User-Account-Control-Computed", "pwdLastSet",
			"userAccountControl", "pwdAccountLockedTime", "pwdReset", "pwdChangedTime"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return fmt.Errorf("search %s: %v", username, err)
	}
	dn := res.Entries[0].DN
	pw, err := f.gen.Generate(directory.User{Username: username})
	if err != nil {
		return err
	}
	if f.lab.Dialect == ldaplab.DialectOpenLDAP {
		if _, err := conn.PasswordModify(ldap.NewPasswordModifyRequest(dn, "", pw)); err != nil {
			return err
		}
		m := ldap.NewModifyRequest(dn, nil)
		m.Replace("pwdReset", []string{"TRUE"})
		if err := conn.Modify(m); err != nil {
			return err
		}
		m = ldap.NewModifyRequest(dn, nil)
		m.Delete("pwdAccountLockedTime", nil)
		if err := conn.Modify(m); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchAttribute) {
			return err
		}
		return nil
	}
	m := ldap.NewModifyRequest(dn, nil)
	m.Replace("unicodePwd", []string{directory.EncodeUnicodePwd(pw)})
	m.Replace("pwdLastSet", []string{"0"})
	m.Replace("lockoutTime", []string{"0"})
	return conn.Modify(m)
}

type result struct {
	lat     []time.Duration
	elapsed time.Duration
}

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func (r result) rate() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

// run calls op total times from conc workers; worker w gets its index.
func run(b *testing.B, conc, total int, op func(worker, i int) error) result {
	var mu sync.Mutex
	var lat []time.Duration
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, total/conc+1)
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					break
				}
				t0 := time.Now()
				if err := op(w, i); err != nil {
					b.Error(err)
					return
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return result{lat: lat, elapsed: time.Since(start)}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

// BenchmarkResetRoundTrip compares a signed RESET webhook (in → reply
// out, the password set in the directory) with the raw directory work, at
// concurrency 1 and 8, on Samba AD and on OpenLDAP, in the same run.
func BenchmarkResetRoundTrip(b *testing.B) {
	for _, lab := range []*ldaplab.Server{ldaplab.Samba(b), ldaplab.OpenLDAP(b)} {
		resetRoundTrip(b, newFixture(b, lab, size(64, 8)))
	}
}

func resetRoundTrip(b *testing.B, f *fixture) {
	conns := make([]*ldap.Conn, 8)
	for i := range conns {
		conns[i] = f.lab.Conn(b, f.lab.ServiceDN, f.lab.ServicePassword)
	}
	for _, conc := range []int{1, 8} {
		total := size(150, 4) * conc
		before := f.okEvents(b, "reset")
		// Alternate raw and gateway in halves so drift hits both alike.
		var raw, gw result
		for half := 0; half < 2; half++ {
			r := run(b, conc, total/2, func(w, i int) error { return f.rawReset(conns[w], f.users[(i*conc+w)%len(f.users)]) })
			g := run(b, conc, total/2, func(w, i int) error {
				_, err := f.webhook(f.phones[(i*conc+w)%len(f.phones)], "RESET")
				return err
			})
			raw.lat, gw.lat = append(raw.lat, r.lat...), append(gw.lat, g.lat...)
		}
		f.wantDone(b, "reset", before, 2*(total/2))
		for _, p := range []struct {
			name string
			q    float64
		}{{"p50", 0.5}, {"p99", 0.99}} {
			g, r := gw.pct(p.q), raw.pct(p.q)
			record(figure{sec: secReset, what: fmt.Sprintf("RESET round trip %s, concurrency %d (%d ops)", p.name, conc, len(gw.lat)),
				dir: labName(f.lab), gateway: ms(g) + " ms", raw: ms(r) + " ms", ratio: ratio(float64(g), float64(r))})
		}
		b.ReportMetric(float64(gw.pct(0.5))/float64(raw.pct(0.5)), fmt.Sprintf("%s-ratio-p50-c%d", f.lab.Dialect, conc))
	}
}

// BenchmarkStatusHelp measures webhook throughput for HELP (no directory
// work) and STATUS (one directory search) at concurrency 8, against the
// same user search done directly.
func BenchmarkStatusHelp(b *testing.B) {
	for _, lab := range []*ldaplab.Server{ldaplab.Samba(b), ldaplab.OpenLDAP(b)} {
		statusHelp(b, newFixture(b, lab, size(16, 4)))
	}
}

func statusHelp(b *testing.B, f *fixture) {
	name := labName(f.lab)
	help := run(b, 8, size(4000, 40), func(w, i int) error {
		msgs, err := f.webhook(f.phones[i%len(f.phones)], "HELP")
		if err == nil && len(msgs) != 1 {
			err = fmt.Errorf("HELP: %d reply messages, want 1", len(msgs))
		}
		return err
	})
	record(figure{sec: secHelp, what: fmt.Sprintf("HELP replies/s, concurrency 8 (%d ops, p99 %s ms)", len(help.lat), ms(help.pct(0.99))),
		dir: name, gateway: fmt.Sprintf("%.0f/s", help.rate())})
	b.ReportMetric(help.rate(), f.lab.Dialect+"-help-req/s")

	before := f.okEvents(b, "status")
	status := run(b, 8, size(2000, 40), func(w, i int) error {
		_, err := f.webhook(f.phones[i%len(f.phones)], "STATUS")
		return err
	})
	f.wantDone(b, "status", before, len(status.lat))
	// The ceiling for STATUS: the same user search done directly, 8 connections.
	conns := make([]*ldap.Conn, 8)
	for i := range conns {
		conns[i] = f.lab.Conn(b, f.lab.ServiceDN, f.lab.ServicePassword)
	}
	attr := f.dcfg.EffectiveUsernameAttribute()
	search := run(b, 8, size(2000, 40), func(w, i int) error {
		res, err := conns[w].Search(ldap.NewSearchRequest(f.dcfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 10, false,
			"(&"+f.dcfg.EffectiveUserFilter()+"("+attr+"="+ldap.EscapeFilter(f.users[i%len(f.users)])+"))",
			[]string{attr, "displayName", "mail", "mobile"}, nil))
		if err == nil && len(res.Entries) != 1 {
			err = fmt.Errorf("search: %d entries", len(res.Entries))
		}
		return err
	})
	record(figure{sec: secStatus, what: fmt.Sprintf("STATUS replies/s vs raw user search/s, concurrency 8 (%d ops, p99 %s ms)",
		len(status.lat), ms(status.pct(0.99))), dir: name, gateway: fmt.Sprintf("%.0f/s", status.rate()),
		raw: fmt.Sprintf("%.0f/s", search.rate()), ratio: ratio(status.rate(), search.rate())})
	b.ReportMetric(status.rate(), f.lab.Dialect+"-status-req/s")
}
