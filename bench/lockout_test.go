package bench

import (
	"context"
	crand "crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
)

// Lockout monitor figures (issue 4): fixture loading, the cost of one poll
// with no change (incremental scan against a full sweep), and detection
// latency for single lockouts at a 5 s poll interval.
//
//	REPLYRESET_INTEGRATION=1 go test -run '^$' -bench Lockout -benchtime 1x -timeout 60m \
//	    -exec $PWD/scripts/netns-exec.sh ./bench/
//
// REPLYRESET_BENCH_OPENLDAP_USERS and REPLYRESET_BENCH_SAMBA_USERS change
// the directory sizes (defaults 50,000 and 20,000; under -short 200 and
// 100). The details go to stderr; the table gets the headline figures.

func BenchmarkLockoutOpenLDAP(b *testing.B) {
	lockoutBench(b, ldaplab.OpenLDAP(b), envInt(b, "REPLYRESET_BENCH_OPENLDAP_USERS", size(50000, 200)))
}

func BenchmarkLockoutSamba(b *testing.B) {
	lockoutBench(b, ldaplab.Samba(b), envInt(b, "REPLYRESET_BENCH_SAMBA_USERS", size(20000, 100)))
}

const (
	loadWorkers = 8
	loadBudget  = 5 * time.Minute // Samba: stop loading past this and extrapolate
)

// pollInterval, latencySample and costPolls shrink under -short.
func pollInterval() time.Duration { return time.Duration(size(5, 1)) * time.Second }
func latencySample() int          { return size(20, 2) }
func costPolls() int              { return size(20, 3) }

// detailf prints a figure that is not in the table, to stderr.
func detailf(format string, args ...any) { fmt.Fprintf(os.Stderr, format, args...) }

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		b.Fatalf("%s=%q: not a count", name, v)
	}
	return n
}

func labName(lab *ldaplab.Server) string {
	if lab.Dialect == ldaplab.DialectAD {
		return "Samba AD"
	}
	return "OpenLDAP"
}

func lockoutBench(b *testing.B, lab *ldaplab.Server, nUsers int) {
	name := labName(lab)
	detailf("\nLockout monitor, %s on 127.0.0.1\n", name)
	loaded := loadBulkUsers(b, lab, nUsers)

	cfg := lab.DirectoryConfig()
	cfg.Timeout = 60 * time.Second // a full sweep of a big directory may take a while
	d, err := directory.New(cfg, directory.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })

	// Detection latency first: it leaves latencySample accounts locked, so
	// the full sweeps below have locked entries to read.
	detectionLatency(b, lab, d)
	pollCost(b, lab, d, loaded)
}

// bulkDN and the bulk entries: plain users, in the users container, named
// bulk-NNNNNN.
func bulkDN(lab *ldaplab.Server, i int) string {
	if lab.Dialect == ldaplab.DialectAD {
		return fmt.Sprintf("CN=bulk-%06d,%s", i, lab.UsersDN)
	}
	return fmt.Sprintf("uid=bulk-%06d,%s", i, lab.UsersDN)
}

func bulkAdd(lab *ldaplab.Server, i int, hashed string) *ldap.AddRequest {
	name := fmt.Sprintf("bulk-%06d", i)
	add := ldap.NewAddRequest(bulkDN(lab, i), nil)
	if lab.Dialect == ldaplab.DialectAD {
		// No unicodePwd: Samba derives NT and Kerberos keys (PBKDF2) for a
		// password, which costs more than the entry itself and changes
		// nothing for a lockout scan. PASSWD_NOTREQD|NORMAL_ACCOUNT keeps
		// the account enabled, so the default user filter matches it.
		add.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "user"})
		add.Attribute("sAMAccountName", []string{name})
		add.Attribute("userPrincipalName", []string{name + "@sspr.test"})
		add.Attribute("userAccountControl", []string{"544"})
	} else {
		add.Attribute("objectClass", []string{"inetOrgPerson"})
		add.Attribute("uid", []string{name})
		add.Attribute("cn", []string{"Bulk User " + name[5:]})
		add.Attribute("sn", []string{"User"})
		add.Attribute("userPassword", []string{hashed}) // pre-hashed: ppolicy keeps it
	}
	add.Attribute("displayName", []string{"Bulk User " + name[5:]})
	add.Attribute("mail", []string{name + "@example.test"})
	add.Attribute("mobile", []string{fmt.Sprintf("+1201%07d", i)})
	return add
}

func sshaHash(password string) string {
	salt := make([]byte, 8)
	_, _ = crand.Read(salt)
	sum := sha1.Sum(append([]byte(password), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
}

// loadBulkUsers adds n users over LDAP as the administrator with
// loadWorkers connections (slapd: plain LDAP on 127.0.0.1:3389 as the
// rootdn; Samba: LDAPS, since Samba refuses simple binds without TLS). It
// returns how many it loaded: Samba stops at loadBudget.
func loadBulkUsers(b *testing.B, lab *ldaplab.Server, n int) int {
	hashed := sshaHash("Bulk#Pass1x")
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	deadline := time.Now().Add(loadBudget)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < loadWorkers; w++ {
		conn := loadConn(b, lab)
		wg.Go(func() {
			defer conn.Close()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || (lab.Dialect == ldaplab.DialectAD && time.Now().After(deadline)) {
					return
				}
				if err := conn.Add(bulkAdd(lab, i, hashed)); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
					errOnce.Do(func() { firstErr = fmt.Errorf("add %s: %w", bulkDN(lab, i), err) })
					return
				}
				if c := done.Add(1); c%10000 == 0 {
					detailf("  ... %d users in %v\n", c, time.Since(start).Round(time.Second))
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if firstErr != nil {
		b.Fatalf("loading %s: %v (after %d users)", labName(lab), firstErr, done.Load())
	}
	loaded := int(done.Load())
	rate := float64(loaded) / took.Seconds()
	detailf("fixture: %d users loaded over LDAP in %v (%.0f adds/s, %d connections)\n",
		loaded, took.Round(100*time.Millisecond), rate, loadWorkers)
	if loaded < n {
		detailf("fixture: stopped at the %v budget; %d users would take about %v at this rate\n",
			loadBudget, n, (time.Duration(float64(n)/rate) * time.Second).Round(time.Second))
	}
	return loaded
}

func loadConn(b *testing.B, lab *ldaplab.Server) *ldap.Conn {
	var conn *ldap.Conn
	var err error
	if lab.Dialect == ldaplab.DialectAD {
		conn, err = lab.Dial()
	} else {
		conn, err = ldap.DialURL(lab.StartTLSURL)
	}
	if err != nil {
		b.Fatal(err)
	}
	conn.SetTimeout(time.Minute)
	if err := conn.Bind(lab.AdminDN, lab.AdminPassword); err != nil {
		conn.Close()
		b.Fatal(err)
	}
	return conn
}

type pollFigures struct {
	took []time.Duration
	read []int
	full bool
}

func (p *pollFigures) add(st directory.ScanStats) {
	p.took = append(p.took, st.Took)
	p.read = append(p.read, st.EntriesRead)
	p.full = st.Full
}

func (p pollFigures) print(label string) {
	r := result{lat: p.took}
	lo, hi := p.read[0], p.read[0]
	for _, n := range p.read {
		lo, hi = min(lo, n), max(hi, n)
	}
	reads := strconv.Itoa(lo)
	if hi != lo {
		reads += "-" + strconv.Itoa(hi)
	}
	detailf("  %-52s %6d %9s %9s %9s %9s\n", label, len(p.took), reads, ms(r.pct(0.5)), ms(r.pct(0.99)), ms(slicesMax(p.took)))
}

func slicesMax(d []time.Duration) time.Duration {
	var m time.Duration
	for _, v := range d {
		m = max(m, v)
	}
	return m
}

// pollCost measures ScanLockouts with no lockout since the last poll:
// incremental with no change at all, incremental after unrelated changes
// (users' descriptions edited between polls, so AD's USN moves and the
// search runs: 1 edit lists the USN, 300 take the (uSNChanged>=N) form),
// and a full sweep; plus, on slapd, the raw searches of the alternatives
// the scanner does not use.
func pollCost(b *testing.B, lab *ldaplab.Server, d *directory.Client, loaded int) {
	ctx := context.Background()
	_, cur, _, err := d.ScanLockouts(ctx, nil, true)
	if err != nil {
		b.Fatal(err)
	}
	admin := lab.AdminConn(b)
	edit := func(n int) {
		for i := 0; i < n && loaded > 0; i++ {
			m := ldap.NewModifyRequest(bulkDN(lab, rand.IntN(loaded)), nil)
			m.Replace("description", []string{fmt.Sprintf("edit %d", rand.Int())})
			if err := admin.Modify(m); err != nil {
				b.Fatal(err)
			}
		}
	}
	poll := func(p *pollFigures, polls, edits int) {
		for i := 0; i < polls; i++ {
			edit(edits)
			_, next, st, err := d.ScanLockouts(ctx, cur, false)
			if err != nil {
				b.Fatal(err)
			}
			cur = next
			p.add(st)
		}
	}
	var quiet, touched, busy, full pollFigures
	poll(&quiet, costPolls(), 0)
	poll(&touched, costPolls(), 1)
	poll(&busy, size(5, 1), size(300, 10))
	var events int
	for i := 0; i < costPolls(); i++ {
		ev, _, st, err := d.ScanLockouts(ctx, cur, true)
		if err != nil {
			b.Fatal(err)
		}
		events = len(ev)
		full.add(st)
	}
	detailf("\none poll with no new lockout, %s, %d users, %d accounts locked (ms)\n", labName(lab), loaded, events)
	detailf("  %-52s %6s %9s %9s %9s %9s\n", "scan", "polls", "entries", "p50", "p99", "max")
	quiet.print("incremental, nothing changed")
	touched.print("incremental, 1 unrelated edit in between")
	busy.print("incremental, 300 unrelated edits in between")
	full.print("full sweep")
	q, fs := result{lat: quiet.took}, result{lat: full.took}
	record(figure{sec: secLockout, what: fmt.Sprintf("Lockout poll with no new lockout, %d users, p50 / p99 (incremental vs full sweep)", loaded),
		dir: labName(lab), gateway: ms(q.pct(0.5)) + " / " + ms(q.pct(0.99)) + " ms", raw: ms(fs.pct(0.5)) + " / " + ms(fs.pct(0.99)) + " ms",
		ratio: ratio(float64(q.pct(0.5)), float64(fs.pct(0.5)))})
	b.ReportMetric(float64(result{lat: quiet.took}.pct(0.5).Microseconds())/1000, lab.Dialect+"-quiet-poll-ms")
	b.ReportMetric(float64(result{lat: full.took}.pct(0.5).Microseconds())/1000, lab.Dialect+"-full-sweep-ms")

	if lab.Dialect != ldaplab.DialectOpenLDAP {
		return
	}
	// The alternatives the scanner does not use, as raw searches for lock
	// times (or modifications) in the last 30 s, by the rootdn: the
	// service account's size limit (500) would cut the modifyTimestamp one.
	svc := lab.AdminConn(b)
	since := time.Now().Add(-30 * time.Second).UTC().Format("20060102150405Z")
	for _, alt := range []struct{ label, filter string }{
		{"raw (pwdAccountLockedTime>=T), presence term", "(&(objectClass=inetOrgPerson)(pwdAccountLockedTime=*)(pwdAccountLockedTime>=" + since + "))"},
		{"raw (pwdAccountLockedTime>=T), no presence term", "(&(objectClass=inetOrgPerson)(pwdAccountLockedTime>=" + since + "))"},
		{"raw (modifyTimestamp>=T) (the rejected incremental)", "(&(objectClass=inetOrgPerson)(modifyTimestamp>=" + since + "))"},
	} {
		var p pollFigures
		for i := 0; i < costPolls(); i++ {
			t0 := time.Now()
			res, err := svc.SearchWithPaging(ldap.NewSearchRequest(lab.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
				0, 60, false, alt.filter, []string{"1.1"}, nil), 500)
			if err != nil {
				detailf("  %-52s error: %v\n", alt.label, err)
				break
			}
			p.add(directory.ScanStats{Took: time.Since(t0), EntriesRead: len(res.Entries)})
		}
		if len(p.took) > 0 {
			p.print(alt.label)
		}
	}
}

// detectionLatency locks latencySample accounts one at a time, each at a
// random moment, while a monitor polls every pollInterval; latency is the
// time from the lockout (the locking bad bind answered) to the end of the
// poll that reported it.
func detectionLatency(b *testing.B, lab *ldaplab.Server, d *directory.Client) {
	var users []string
	dns := map[string]string{}
	for i := 0; i < latencySample(); i++ {
		u := lab.UniqueName("lat")
		dns[u] = lab.AddUser(b, ldaplab.UserSpec{Username: u, Password: "Latency#Pass1x", DisplayName: "Latency " + u})
		users = append(users, u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, cur, _, err := d.ScanLockouts(ctx, nil, true)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]time.Time{}
	found := make(chan string, latencySample()*2)
	var polls pollFigures
	var pollErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(pollInterval())
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ev, next, st, err := d.ScanLockouts(ctx, cur, false)
			at := time.Now()
			if err != nil {
				mu.Lock()
				if ctx.Err() == nil {
					pollErr = err
				}
				mu.Unlock()
				return
			}
			cur = next
			mu.Lock()
			polls.add(st)
			for _, e := range ev {
				if _, dup := seen[e.User.Username]; !dup {
					seen[e.User.Username] = at
					found <- e.User.Username
				}
			}
			mu.Unlock()
		}
	})
	var lat []time.Duration
	for _, u := range users {
		time.Sleep(time.Duration(rand.Int64N(int64(pollInterval()))))
		lockedAt, err := lockByBadBinds(lab, dns[u])
		if err != nil {
			b.Fatal(err)
		}
		timeout := time.After(4 * pollInterval())
	wait:
		for {
			select {
			case got := <-found:
				if got == u {
					break wait
				}
			case <-timeout:
				mu.Lock()
				err := pollErr
				mu.Unlock()
				b.Fatalf("%s locked at %v, not reported within %v (poll error: %v)", u, lockedAt, 4*pollInterval(), err)
			}
		}
		mu.Lock()
		lat = append(lat, seen[u].Sub(lockedAt))
		mu.Unlock()
	}
	cancel()
	wg.Wait()
	r := result{lat: lat}
	detailf("\ndetection latency, %s, poll every %v, %d single lockouts at random moments\n", labName(lab), pollInterval(), len(lat))
	detailf("  p50 %s ms   p99 %s ms (with %d samples p99 is the largest)   min %s ms\n",
		ms(r.pct(0.5)), ms(r.pct(0.99)), len(lat), ms(slicesMin(lat)))
	mu.Lock()
	p := result{lat: polls.took}
	detailf("  monitor polls meanwhile: %d, each p50 %s ms, max %s ms\n", len(polls.took), ms(p.pct(0.5)), ms(slicesMax(polls.took)))
	mu.Unlock()
	record(figure{sec: secLockout, what: fmt.Sprintf("Lockout detection latency, poll every %v, p50 / p99 (%d lockouts)", pollInterval(), len(lat)),
		dir: labName(lab), gateway: ms(r.pct(0.5)) + " / " + ms(r.pct(0.99)) + " ms"})
	b.ReportMetric(float64(r.pct(0.5).Milliseconds()), lab.Dialect+"-detect-p50-ms")
	b.ReportMetric(float64(r.pct(0.99).Milliseconds()), lab.Dialect+"-detect-p99-ms")
}

func slicesMin(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	m := d[0]
	for _, v := range d {
		m = min(m, v)
	}
	return m
}

// lockByBadBinds fails ldaplab.LockoutThreshold binds as dn and returns
// when the last one was answered.
func lockByBadBinds(lab *ldaplab.Server, dn string) (time.Time, error) {
	c, err := lab.Dial()
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	for i := 0; i < ldaplab.LockoutThreshold; i++ {
		err := c.Bind(dn, "Wrong#Pass"+strings.Repeat("9", i+1))
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return time.Time{}, fmt.Errorf("bad bind %d as %s: %w", i+1, dn, errors.Join(err, errors.New("want result 49")))
		}
	}
	return time.Now(), nil
}
