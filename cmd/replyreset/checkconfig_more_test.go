package main

// check-config beyond the directory: the data file, SMTP (smtptest) and
// the Twilio account (twiliotest's fake REST API), all on 127.0.0.1.

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/gateway/mailer/smtptest"
	"github.com/replyreset/replyreset/gateway/twiliotest"
)

// The mail check trusts the CA of each smtptest server a test registers
// (trustSMTP), as the production mailer trusts the system roots.
func init() {
	checkMailOptions = func(c mailer.Config) []mailer.Option {
		if pool, ok := smtpCAs.Load(net.JoinHostPort(c.Host, strconv.Itoa(c.Port))); ok {
			return []mailer.Option{mailer.WithRootCAs(pool.(*x509.CertPool))}
		}
		return nil
	}
}

var smtpCAs sync.Map // "host:port" → *x509.CertPool

// trustSMTP makes the mail check trust srv's self-signed certificate.
func trustSMTP(t *testing.T, srv *smtptest.Server) {
	t.Helper()
	smtpCAs.Store(srv.Addr, srv.CertPool())
	t.Cleanup(func() { smtpCAs.Delete(srv.Addr) })
}

const (
	smtpUser     = "replyreset@example.test"
	smtpPassword = "Smtp#Secret42"
)

// moreConfig is what these tests add to writeConfig's file.
type moreConfig struct {
	twilio   *twiliotest.Fake // sms.twilio.api_base_url; nil: writeConfig's shared fake
	outbox   bool             // sms.provider: outbox
	smtp     *smtptest.Server // mail.host and mail.port; nil: mail off
	smtpAddr string           // instead of smtp: an address nothing listens on
	tls      string           // mail.tls (default mandatory)
	noAuth   bool             // no mail.username
	password string           // mail.password (default smtpPassword)
}

// writeMoreConfig writes c's file with m's additions.
func writeMoreConfig(t *testing.T, c testConfig, m moreConfig) configFile {
	t.Helper()
	f := writeConfig(t, c)
	raw, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	shared := "    api_base_url: " + q(sharedTwilio().URL) + "\n"
	if !strings.HasSuffix(text, shared) {
		t.Fatalf("writeConfig no longer ends with sms.twilio.api_base_url:\n%s", text)
	}
	if m.twilio != nil {
		text = strings.TrimSuffix(text, shared) + "    api_base_url: " + q(m.twilio.URL) + "\n"
	}
	if m.outbox {
		text = strings.Replace(text, "  provider: twilio\n", "  provider: outbox\n", 1)
	}
	addr := m.smtpAddr
	if m.smtp != nil {
		addr = m.smtp.Addr
	}
	if addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		tls := m.tls
		if tls == "" {
			tls = "mandatory"
		}
		text += "mail:\n  host: " + q(host) + "\n  port: " + port + "\n  from: " + q("IT <it@example.test>") + "\n  tls: " + tls + "\n"
		if !m.noAuth {
			pw := m.password
			if pw == "" {
				pw = smtpPassword
			}
			text += "  username: " + q(smtpUser) + "\n  password: " + q(pw) + "\n"
		}
	}
	writeFile(t, f.Path, text)
	return f
}

// newTwilio is a fake Twilio for the test credentials owning the numbers.
func newTwilio(t *testing.T, authToken string, owned ...string) *twiliotest.Fake {
	t.Helper()
	f := twiliotest.NewFake(testAccountSID, authToken)
	t.Cleanup(f.Close)
	f.SetOwnedNumbers(owned...)
	return f
}

// newSMTP is a STARTTLS server with the test account, trusted by the check.
func newSMTP(t *testing.T) *smtptest.Server {
	t.Helper()
	srv := smtptest.New(t, smtptest.Options{STARTTLS: true, Username: smtpUser, Password: smtpPassword})
	trustSMTP(t, srv)
	return srv
}

const twilioLine = "twilio account AC0123…: "

func storeLine(f configFile) string {
	return "store " + filepath.Join(f.DataDir, "replyreset.db") + ": "
}

// wantNoSecrets fails if the run printed the auth token or a mail password.
func wantNoSecrets(t *testing.T, r cliResult, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, testAuthToken, smtpPassword) {
		if strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s) {
			t.Errorf("check-config printed the secret %q:\n%v", s, r)
		}
	}
}

func TestCheckConfigAllOK(t *testing.T) {
	t.Parallel()
	lab := ldaplab.OpenLDAP(t)
	tw := newTwilio(t, testAuthToken, testFromNumber)
	srv := newSMTP(t)
	f := writeMoreConfig(t, labConfig(lab), moreConfig{twilio: tw, smtp: srv})
	// Alerts reach someone, so nothing warns.
	raw, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.Path, string(raw)+"admin:\n  alert_mail: [soc@example.test]\n")

	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 0)
	if _, ok := lineWithPrefix(r.stdout, "directory "+lab.LDAPSURL+": OK ("); !ok {
		t.Errorf("the directory is not reported OK:\n%v", r)
	}
	wantLine(t, r, r.stdout, storeLine(f)+"OK (not created yet; serve creates it)")
	wantLine(t, r, r.stdout, "mail smtp://"+srv.Addr+": OK (STARTTLS, authenticated as "+smtpUser+")")
	wantLine(t, r, r.stdout, twilioLine+"OK (from "+testFromNumber+", owned by the account)")
	if strings.Contains(r.stdout, "FAILED") || r.stderr != "" {
		t.Errorf("a passing check printed a failure:\n%v", r)
	}
	// The lines come in order: file, directory, store settings, store,
	// key file, mail, Twilio.
	order := []string{": syntax and values OK", "directory ", "store: backend bolt (data file " + dataFile(&Config{DataDir: f.DataDir}),
		"store ", "key file " + filepath.Join(f.DataDir, "replyreset.key") + ": OK (not created yet; serve creates it)", "mail ", "twilio "}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(order) {
		t.Fatalf("%d lines, want %d:\n%v", len(lines), len(order), r)
	}
	for i, l := range lines {
		if !strings.Contains(l, order[i]) {
			t.Errorf("line %d %q, want %q there", i+1, l, order[i])
		}
	}
	wantNoSecrets(t, r)
	// Nothing was sent and nothing was created.
	if n := len(tw.Resources()); n != 0 {
		t.Errorf("check-config created %d messages or calls", n)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("check-config sent %d mails", n)
	}
	if _, err := os.Stat(f.DataDir); !os.IsNotExist(err) {
		t.Errorf("check-config created the data directory: %v", err)
	}

	// With a data file: its enrollments are counted.
	user := lab.UniqueName("ccok")
	lab.AddUser(t, ldaplab.UserSpec{Username: user})
	mustRun(t, "enroll", "-config", f.Path, user, "+1 201 555 0190")
	r = runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 0)
	wantLine(t, r, r.stdout, storeLine(f)+"OK (1 enrollment)")
	if _, ok := lineWithPrefix(r.stdout, "key file "+filepath.Join(f.DataDir, "replyreset.key")+": OK (fingerprint "); !ok {
		t.Errorf("the key file is not checked against the store:\n%v", r)
	}
}

func TestCheckConfigOutboxAndMailOff(t *testing.T) {
	t.Parallel()
	lab := ldaplab.OpenLDAP(t)
	f := writeMoreConfig(t, labConfig(lab), moreConfig{outbox: true})
	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 0)
	wantLine(t, r, r.stdout, "mail: off (mail.host is empty: activation emails cannot be sent)")
	wantLine(t, r, r.stdout, "sms: outbox provider (nothing is sent)")
	if strings.Contains(r.stdout, "twilio") {
		t.Errorf("the outbox provider dialled Twilio:\n%v", r)
	}
}

// The other tests' configurations name the shared fake Twilio.
func TestCheckConfigSharedTwilio(t *testing.T) {
	t.Parallel()
	lab := ldaplab.OpenLDAP(t)
	f := writeConfig(t, labConfig(lab))
	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 0)
	wantLine(t, r, r.stdout, twilioLine+"OK (from "+testFromNumber+", owned by the account)")
}

func TestCheckConfigWrongTwilioToken(t *testing.T) {
	t.Parallel()
	lab := ldaplab.OpenLDAP(t)
	tw := newTwilio(t, "ffeeddccbbaa99887766554433221100", testFromNumber) // not the file's token
	f := writeMoreConfig(t, labConfig(lab), moreConfig{twilio: tw, smtp: newSMTP(t)})
	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 1)
	line, ok := lineWithPrefix(r.stdout, twilioLine+"FAILED at account: auth token or account SID wrong")
	if !ok {
		t.Fatalf("want the Twilio check to fail at the account:\n%v", r)
	}
	for _, want := range []string{"sms.twilio.account_sid and sms.twilio.auth_token", "HTTP 401, Twilio error 20003"} {
		if !strings.Contains(line, want) {
			t.Errorf("the failure lacks %q: %s", want, line)
		}
	}
	if _, ok := lineWithPrefix(r.stdout, "mail smtp://"); !ok || strings.Count(r.stdout, "FAILED") != 1 {
		t.Errorf("only Twilio should fail, and the other checks still run:\n%v", r)
	}
	wantLine(t, r, r.stderr, "replyreset check-config: the Twilio check failed")
	wantNoSecrets(t, r, "ffeeddccbbaa99887766554433221100")
}

func TestCheckConfigFromNotOwned(t *testing.T) {
	t.Parallel()
	lab := ldaplab.OpenLDAP(t)
	tw := newTwilio(t, testAuthToken, "+15550002222")
	f := writeMoreConfig(t, labConfig(lab), moreConfig{twilio: tw})
	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 1)
	if _, ok := lineWithPrefix(r.stdout, twilioLine+"FAILED at from: sms.twilio.from "+testFromNumber+
		" is not a phone number of account "+testAccountSID); !ok {
		t.Fatalf("want the from number refused:\n%v", r)
	}
	wantLine(t, r, r.stderr, "replyreset check-config: the Twilio check failed")

	// Owned but unable to place the calls enrollment.methods offers.
	tw.SetOwnedNumbers(testFromNumber)
	tw.SetNumberCapabilities(testFromNumber, true, false)
	r = runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 1)
	wantLine(t, r, r.stdout, twilioLine+"FAILED at from: sms.twilio.from "+testFromNumber+
		" cannot place calls, but enrollment.methods offers voice")
}

func TestCheckConfigSMTPDown(t *testing.T) {
	t.Parallel()
	lab := ldaplab.OpenLDAP(t)
	addr := freePort(t) // nothing listens there
	f := writeMoreConfig(t, labConfig(lab), moreConfig{twilio: newTwilio(t, testAuthToken, testFromNumber), smtpAddr: addr})
	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 1)
	line, ok := lineWithPrefix(r.stdout, "mail smtp://"+addr+": FAILED at dial: ")
	if !ok {
		t.Fatalf("want the mail check to fail at dial:\n%v", r)
	}
	for _, want := range []string{"connection refused", "check mail.host and mail.port"} {
		if !strings.Contains(line, want) {
			t.Errorf("the failure lacks %q: %s", want, line)
		}
	}
	wantLine(t, r, r.stdout, twilioLine+"OK (from "+testFromNumber+", owned by the account)")
	wantLine(t, r, r.stderr, "replyreset check-config: the mail check failed")
}

func TestCheckConfigSMTPWrongPassword(t *testing.T) {
	t.Parallel()
	lab := ldaplab.OpenLDAP(t)
	srv := newSMTP(t)
	const wrong = "Wrong#Smtp77"
	f := writeMoreConfig(t, labConfig(lab), moreConfig{twilio: newTwilio(t, testAuthToken, testFromNumber),
		smtp: srv, password: wrong})
	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 1)
	line, ok := lineWithPrefix(r.stdout, "mail smtp://"+srv.Addr+": FAILED at auth: ")
	if !ok {
		t.Fatalf("want the mail check to fail at auth:\n%v", r)
	}
	if !strings.Contains(line, "check mail.username and mail.password") || !strings.Contains(line, smtpUser) {
		t.Errorf("the failure does not say what to check: %s", line)
	}
	wantLine(t, r, r.stderr, "replyreset check-config: the mail check failed")
	wantNoSecrets(t, r, wrong)
}

func TestCheckConfigSMTPCertificateNotTrusted(t *testing.T) {
	t.Parallel()
	lab := ldaplab.OpenLDAP(t)
	srv := smtptest.New(t, smtptest.Options{STARTTLS: true, Username: smtpUser, Password: smtpPassword}) // not trusted
	f := writeMoreConfig(t, labConfig(lab), moreConfig{twilio: newTwilio(t, testAuthToken, testFromNumber), smtp: srv})
	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 1)
	if _, ok := lineWithPrefix(r.stdout, "mail smtp://"+srv.Addr+": FAILED at tls: "); !ok {
		t.Fatalf("want the mail check to fail at tls:\n%v", r)
	}
	wantNoSecrets(t, r)
}

func TestCheckConfigStoreHeldByServer(t *testing.T) {
	t.Parallel()
	lab := ldaplab.OpenLDAP(t)
	c := labConfig(lab)
	c.Listen = freePort(t)
	f := writeMoreConfig(t, c, moreConfig{twilio: newTwilio(t, testAuthToken, testFromNumber), smtp: newSMTP(t)})
	srv := startServe(t, f, c.Listen)

	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 0)
	wantLine(t, r, r.stdout, storeLine(f)+"held by the running server (control socket "+
		filepath.Join(f.DataDir, controlSocketName)+"); not opened")
	if strings.Contains(r.stdout, "FAILED") || r.stderr != "" {
		t.Errorf("a data file held by the server counts as a failure:\n%v", r)
	}

	// Once the server is gone, the file is opened and checked.
	srv.stop(t)
	r = runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 0)
	wantLine(t, r, r.stdout, storeLine(f)+"OK (0 enrollments)")
}

func TestCheckConfigStoreDamaged(t *testing.T) {
	t.Parallel()
	lab := ldaplab.OpenLDAP(t)
	f := writeMoreConfig(t, labConfig(lab), moreConfig{twilio: newTwilio(t, testAuthToken, testFromNumber)})
	if err := os.MkdirAll(f.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(f.DataDir, "replyreset.db"), strings.Repeat("not a bbolt file\n", 512))
	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 1)
	if _, ok := lineWithPrefix(r.stdout, storeLine(f)+"FAILED: "); !ok {
		t.Fatalf("want the data file refused:\n%v", r)
	}
	wantLine(t, r, r.stderr, "replyreset check-config: the store check failed")
}

func TestCheckConfigOfflineDialsNothingMore(t *testing.T) {
	t.Parallel()
	tw := newTwilio(t, testAuthToken, testFromNumber)
	srv := newSMTP(t)
	f := writeMoreConfig(t, offlineConfig(), moreConfig{twilio: tw, smtp: srv})
	r := runCLI(t, "check-config", "-offline", "-config", f.Path)
	wantCode(t, r, 0)
	if want := f.Path + ": syntax and values OK\n"; r.stdout != want {
		t.Errorf("stdout = %q, want only %q", r.stdout, want)
	}
	if n := len(tw.Requests()); n != 0 {
		t.Errorf("-offline made %d requests to Twilio", n)
	}
	if _, err := os.Stat(f.DataDir); !os.IsNotExist(err) {
		t.Errorf("-offline touched the data directory: %v", err)
	}
}
