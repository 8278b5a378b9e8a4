package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/twiliotest"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ldaplab.StopAll()
	os.Exit(code)
}

const (
	authToken = "bench-auth-token-0123456789abcdef"
	publicURL = "https://reset.example.test"
)

type fixture struct {
	lab    *ldaplab.Server
	dcfg   directory.Config
	users  []string // usernames, enrolled with phones[i]
	phones []string
	srv    *httptest.Server
	client *http.Client
	gen    *directory.Generator
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
	store, err := enroll.OpenBolt(filepath.Join(b.TempDir(), "replyreset.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	f.gen, err = directory.NewGenerator(directory.DefaultPasswordConfig())
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
	wh := gateway.NewWebhook(gateway.Settings{PublicURL: publicURL, AuthToken: authToken, MaxResetsPerHour: 1 << 30,
		Password: directory.SetPasswordOptions{MustChange: true, Unlock: true}}, store, dir, f.gen, catalog, nil)
	f.srv = httptest.NewServer(web.NewEcho(web.Deps{SMSWebhook: wh, Directory: dir}))
	b.Cleanup(f.srv.Close)
	f.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return f
}

// webhook posts one signed inbound SMS and checks the reply is TwiML.
func (f *fixture) webhook(from, body string) error {
	form := url.Values{"MessageSid": {fmt.Sprintf("SM%032x", f.sid.Add(1))}, "From": {from},
		"To": {"+12015550000"}, "Body": {body}}
	status, _, raw, err := twiliotest.PostSMS(context.Background(), f.client, f.srv.URL+"/sms/twilio",
		publicURL+"/sms/twilio", authToken, form)
	if err != nil {
		return err
	}
	if status != 200 || !strings.Contains(raw, "<Message>") {
		return fmt.Errorf("status %d: %s", status, raw)
	}
	return nil
}

// rawReset is the same directory work done directly with go-ldap: find the
// user, then set the password, must-change and unlock in one modify.
func (f *fixture) rawReset(conn *ldap.Conn, username string) error {
	res, err := conn.Search(ldap.NewSearchRequest(f.dcfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 10, false,
		"(&"+f.dcfg.EffectiveUserFilter()+"(sAMAccountName="+ldap.EscapeFilter(username)+"))",
		[]string{"sAMAccountName", "displayName", "mail", "mobile", "lockoutTime", "msDS-User-Account-Control-Computed", "pwdLastSet", "userAccountControl"}, nil))
	if err != nil || len(res.Entries) != 1 {
		return fmt.Errorf("search %s: %v", username, err)
	}
	pw, err := f.gen.Generate(directory.User{Username: username})
	if err != nil {
		return err
	}
	m := ldap.NewModifyRequest(res.Entries[0].DN, nil)
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

// BenchmarkResetRoundTrip compares a signed RESET webhook (in → TwiML out)
// with the raw directory work, at concurrency 1 and 8, in the same run.
func BenchmarkResetRoundTrip(b *testing.B) {
	f := newFixture(b, ldaplab.Samba(b), 64)
	conns := make([]*ldap.Conn, 8)
	for i := range conns {
		conns[i] = f.lab.Conn(b, f.lab.ServiceDN, f.lab.ServicePassword)
	}
	fmt.Printf("\nRESET round trip vs raw go-ldap (find + set password + unlock), Samba AD on 127.0.0.1 over LDAPS\n")
	fmt.Printf("%-5s %8s %10s %10s %10s %10s %8s %8s\n", "conc", "ops", "raw p50", "raw p99", "gw p50", "gw p99", "p50 x", "p99 x")
	for _, conc := range []int{1, 8} {
		total := 150 * conc
		// Alternate raw and gateway in halves so drift hits both alike.
		var raw, gw result
		for half := 0; half < 2; half++ {
			r := run(b, conc, total/2, func(w, i int) error { return f.rawReset(conns[w], f.users[(i*conc+w)%len(f.users)]) })
			g := run(b, conc, total/2, func(w, i int) error { return f.webhook(f.phones[(i*conc+w)%len(f.phones)], "RESET") })
			raw.lat, gw.lat = append(raw.lat, r.lat...), append(gw.lat, g.lat...)
		}
		fmt.Printf("%-5d %8d %10s %10s %10s %10s %8.2f %8.2f\n", conc, total, ms(raw.pct(0.5)), ms(raw.pct(0.99)),
			ms(gw.pct(0.5)), ms(gw.pct(0.99)), float64(gw.pct(0.5))/float64(raw.pct(0.5)), float64(gw.pct(0.99))/float64(raw.pct(0.99)))
		b.ReportMetric(float64(gw.pct(0.5))/float64(raw.pct(0.5)), fmt.Sprintf("ratio-p50-c%d", conc))
	}
}

// BenchmarkStatusHelp measures webhook throughput for HELP (no directory
// work) and STATUS (one directory search) at concurrency 8.
func BenchmarkStatusHelp(b *testing.B) {
	for _, lab := range []*ldaplab.Server{ldaplab.Samba(b), ldaplab.OpenLDAP(b)} {
		statusHelp(b, newFixture(b, lab, 16))
	}
}

func statusHelp(b *testing.B, f *fixture) {
	name := map[string]string{ldaplab.DialectAD: "Samba AD", ldaplab.DialectOpenLDAP: "OpenLDAP"}[f.lab.Dialect]
	fmt.Printf("\nSTATUS/HELP webhooks at concurrency 8, %s\n%-7s %8s %10s %10s %10s\n", name, "command", "ops", "req/s", "p50 ms", "p99 ms")
	for _, c := range []struct {
		body  string
		total int
	}{{"HELP", 4000}, {"STATUS", 2000}} {
		r := run(b, 8, c.total, func(w, i int) error { return f.webhook(f.phones[i%len(f.phones)], c.body) })
		fmt.Printf("%-7s %8d %10.0f %10s %10s\n", c.body, c.total, r.rate(), ms(r.pct(0.5)), ms(r.pct(0.99)))
		b.ReportMetric(r.rate(), f.lab.Dialect+"-"+strings.ToLower(c.body)+"-req/s")
	}
	// The ceiling for STATUS: the same user search done directly, 8 connections.
	conns := make([]*ldap.Conn, 8)
	for i := range conns {
		conns[i] = f.lab.Conn(b, f.lab.ServiceDN, f.lab.ServicePassword)
	}
	attr := f.dcfg.EffectiveUsernameAttribute()
	r := run(b, 8, 2000, func(w, i int) error {
		_, err := conns[w].Search(ldap.NewSearchRequest(f.dcfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 10, false,
			"(&"+f.dcfg.EffectiveUserFilter()+"("+attr+"="+ldap.EscapeFilter(f.users[i%len(f.users)])+"))",
			[]string{attr, "displayName", "mail", "mobile"}, nil))
		return err
	})
	fmt.Printf("%-7s %8d %10.0f %10s %10s   (raw go-ldap user search: the directory's own ceiling)\n", "search", 2000, r.rate(), ms(r.pct(0.5)), ms(r.pct(0.99)))
}
