package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/store/bolt"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/spf13/cobra"
)

// Test seam, nil in production: extra mailer options (a test SMTP server's
// CA) per mail configuration.
var checkMailOptions func(mailer.Config) []mailer.Option

// Time limits of the mail check (a whole SMTP session) and the Twilio
// check (two REST reads); the directory's come from directory.timeout.
const (
	checkMailTimeout   = 20 * time.Second
	checkTwilioTimeout = 20 * time.Second
)

func newCheckConfigCmd(_ *cmdEnv) *cobra.Command {
	var path string
	var offline bool
	c := &cobra.Command{
		Use:   "check-config",
		Short: "validate a configuration file and dial the directory, store, mail and Twilio",
		Long: `Validate a configuration file (every problem at once, one a line), then
dial what it names: each directory URL, the data file, the SMTP server and
the Twilio account. Exit status 0: usable; 1: problems; 2: usage error.`,
		Example: "  replyreset check-config --config /etc/replyreset/config.yaml",
		Args:    wantArgs(cobra.NoArgs, "check-config takes no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return runCheckConfig(c.Context(), path, offline, c.OutOrStdout())
		},
	}
	configFlag(c.Flags(), &path)
	c.Flags().BoolVar(&offline, "offline", false, "only validate the file; dial nothing")
	return c
}

// runCheckConfig validates the file (every problem at once) and then dials
// what the file names, one line each, saying precisely what failed: each
// directory URL step by step, the data file, the SMTP server and the
// Twilio account. It exits 1 when anything failed; -offline dials nothing.
func runCheckConfig(ctx context.Context, path string, offline bool, out io.Writer) error {
	stdout := lineWriter{out}
	if path == "" {
		path = os.Getenv(configEnv)
	}
	cfg, err := loadConfigFlag(path)
	if err != nil {
		if errors.Is(err, errUsage) {
			return err
		}
		fmt.Fprintf(stdout, "%s: INVALID\n", path)
		for _, p := range leafErrors(err) {
			fmt.Fprintln(stdout, p)
		}
		return &exitError{code: 1, err: errors.New("the configuration file has problems (listed above)")}
	}
	fmt.Fprintf(stdout, "%s: syntax and values OK\n", path)
	var failed []string
	if !offline {
		failed = dialChecks(ctx, cfg, stdout)
	}
	for _, check := range warningChecks {
		for _, w := range check(ctx, cfg, !offline) {
			fmt.Fprintln(stdout, "warning: "+w)
		}
	}
	if len(failed) > 0 {
		return &exitError{code: 1, err: errors.New(strings.Join(failed, "; "))}
	}
	return nil
}

// A warningCheck looks at a valid configuration for settings that work but
// are unsafe or reach nobody, and returns one sentence per warning;
// check-config prints each on a line that starts with "warning: " and
// warnings do not change its exit status. dial is false with --offline: a
// check that needs a server then says nothing.
type warningCheck func(ctx context.Context, cfg *Config, dial bool) []string

// warningChecks are check-config's warnings, in the order printed.
var warningChecks = []warningCheck{
	warnInsecureSkipVerify,
	warnHTTPPublicURL,
	warnMailTLSNone,
	warnAlertsReachNobody,
}

func warnInsecureSkipVerify(_ context.Context, cfg *Config, _ bool) []string {
	if !cfg.Directory.InsecureSkipVerify {
		return nil
	}
	return []string{"directory.insecure_skip_verify is true: the directory's certificate is not checked, " +
		"so whoever sits on the network path can read the passwords the gateway sets"}
}

func warnHTTPPublicURL(_ context.Context, cfg *Config, _ bool) []string {
	if !strings.HasPrefix(cfg.PublicURL, "http://") {
		return nil
	}
	return []string{"public_url is http://: enrollment links, admin sign-ins and Twilio's webhooks cross the network unencrypted; " +
		"use https:// (a reverse proxy with TLS)"}
}

func warnMailTLSNone(_ context.Context, cfg *Config, _ bool) []string {
	if !cfg.Mail.Enabled() || cfg.Mail.TLS != mailer.TLSNone {
		return nil
	}
	return []string{"mail.tls is none: activation emails (their links) and the SMTP password cross the network unencrypted"}
}

// dialChecks dials what cfg names and returns what failed.
func dialChecks(ctx context.Context, cfg *Config, stdout io.Writer) []string {
	var failed []string
	if n := checkDirectory(ctx, cfg, stdout); n > 0 {
		failed = append(failed, fmt.Sprintf("%d of %d directory URLs failed", n, len(cfg.Directory.URLs)))
	} else {
		warnPrivilegedServiceAccount(ctx, cfg, stdout)
	}
	if !checkStore(ctx, cfg, stdout) {
		failed = append(failed, "the store check failed")
	}
	if !checkMail(ctx, cfg, stdout) {
		failed = append(failed, "the mail check failed")
	}
	if !checkSMS(ctx, cfg, stdout) {
		failed = append(failed, "the Twilio check failed")
	}
	return failed
}

// checkDirectory dials each directory URL and returns how many failed.
func checkDirectory(ctx context.Context, cfg *Config, stdout io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.Directory.Timeout*time.Duration(len(cfg.Directory.URLs))+5*time.Second)
	defer cancel()
	failed := 0
	for _, c := range directory.Diagnose(ctx, cfg.Directory) {
		switch {
		case errors.Is(c.Err, directory.ErrServiceCredentials):
			failed++
			fmt.Fprintf(stdout, "directory %s: FAILED at %s: invalid credentials for bind_dn %q (check directory.bind_dn and directory.bind_password)\n",
				c.URL, c.Step, cfg.Directory.BindDN)
			continue
		case c.Err != nil:
			failed++
			// The error starts with the URL and the step, said already.
			fmt.Fprintf(stdout, "directory %s: FAILED at %s: %s\n", c.URL, c.Step, strings.TrimPrefix(c.Err.Error(), c.URL+": "+c.Step+": "))
			continue
		}
		fmt.Fprintf(stdout, "directory %s: OK (%s)\n", c.URL, c.Detail)
	}
	return failed
}

// warnPrivilegedServiceAccount prints a warning when bind_dn is itself a
// privileged account (Domain Admins, adminCount=1, the admin group, ...):
// the gateway needs reset rights on the user OUs only. A failed check is a
// warning too; it never fails check-config.
func warnPrivilegedServiceAccount(ctx context.Context, cfg *Config, stdout io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.Directory.Timeout)
	defer cancel()
	d, err := directory.New(cfg.Directory, directory.Options{})
	if err == nil {
		defer d.Close()
		err = d.CheckServiceAccount(ctx)
	}
	var refused *directory.RefusedError
	switch {
	case errors.As(err, &refused):
		fmt.Fprintf(stdout, "warning: the service account is privileged: %v; give it reset and unlock rights on the user OUs only\n", refused)
	case err != nil:
		fmt.Fprintf(stdout, "warning: could not check whether the service account is privileged: %v\n", err)
	}
}

// checkStore says what the store settings are, opens the store as serve
// would, counts the enrollments and runs the store's consistency check,
// then checks the sealing key against the store (checkKeyFile). A data
// file held by a running server is not a problem: it is said and skipped.
// A data file not created yet is fine when serve can create it. It
// reports whether the checks passed.
func checkStore(ctx context.Context, cfg *Config, stdout io.Writer) bool {
	fmt.Fprintln(stdout, cfg.describeStore())
	where := dataFile(cfg)
	if cfg.Store.Backend == backendEtcd {
		where = "etcd " + strings.Join(cfg.Store.Etcd.Endpoints, ",") + cfg.Store.Etcd.Prefix
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, "store %s: %s\n", where, fmt.Sprintf(format, a...)) }
	if sock := controlSocket(cfg); controlAnswers(sock) {
		say("held by the running server (control socket %s); not opened", sock)
		return true
	}
	if cfg.Store.Backend != backendEtcd {
		st, err := os.Stat(where)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := creatable(cfg.DataDir); err != nil {
				say("FAILED: the data file does not exist and serve cannot create it: %v", err)
				return false
			}
			say("OK (not created yet; serve creates it)")
			return checkKeyFile(ctx, cfg, nil, stdout)
		case err != nil:
			say("FAILED: %v", err)
			return false
		case st.IsDir():
			say("FAILED: this is a directory, not a data file")
			return false
		}
	}
	b, err := openStore(ctx, cfg)
	if errors.Is(err, bolt.ErrInUse) {
		// No control socket answers, so not a server that check-config
		// can name; another command, or a server starting or stopping.
		say("in use by another replyreset process (a server or a command); not opened")
		return true
	}
	if err != nil {
		say("FAILED: %v", err)
		return false
	}
	defer b.Close()
	s := b.Store
	list, err := s.Enrollments(ctx)
	if err != nil {
		say("FAILED reading the enrollments: %v", err)
		return false
	}
	if err := s.Check(ctx); err != nil {
		say("FAILED: %v (restore a backup)", err)
		return false
	}
	n := strconv.Itoa(len(list)) + " enrollments"
	if len(list) == 1 {
		n = "1 enrollment"
	}
	say("OK (%s)", n)
	return checkKeyFile(ctx, cfg, s, stdout)
}

// checkKeyFile checks store.key_file: readable, private, 64 bytes, and
// the key the store's secrets are sealed with (store nil: no store yet).
// A key file not created yet is fine: serve creates it. A store with no
// fingerprint yet gets this key's, as serve would record it.
func checkKeyFile(ctx context.Context, cfg *Config, store enroll.SealKeyStore, stdout io.Writer) bool {
	path := cfg.keyFile()
	say := func(format string, a ...any) {
		fmt.Fprintf(stdout, "key file %s: %s\n", path, fmt.Sprintf(format, a...))
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		say("OK (not created yet; serve creates it)")
		return true
	}
	sealer, err := enroll.LoadKey(path)
	if err != nil {
		say("FAILED: %v", err)
		return false
	}
	if store == nil {
		say("OK (fingerprint %s)", sealer.Fingerprint())
		return true
	}
	if err := checkSealKey(ctx, store, sealer, path); err != nil {
		say("FAILED: %v", err)
		return false
	}
	say("OK (fingerprint %s, the store's)", sealer.Fingerprint())
	return true
}

// creatable checks that dir exists as a writable directory, or can be
// created (its nearest existing parent is a writable directory). It writes
// and removes a temporary file to know.
func creatable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) && filepath.Dir(d) != d {
			continue
		}
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory", d)
		}
		f, err := os.CreateTemp(d, ".replyreset-check-*")
		if err != nil {
			return fmt.Errorf("%s is not writable: %w", d, err)
		}
		name := f.Name()
		f.Close()
		return os.Remove(name)
	}
}

// mailStepHints say what to look at when a step of the SMTP session fails.
var mailStepHints = map[mailer.Step]string{
	mailer.StepDial: "check mail.host and mail.port, and that the server runs and no firewall blocks the port",
	mailer.StepTLS:  "check the server's certificate and mail.tls",
	mailer.StepAuth: "check mail.username and mail.password",
}

// checkMail connects to the SMTP server, does TLS and AUTH as configured,
// and quits without sending.
func checkMail(ctx context.Context, cfg *Config, stdout io.Writer) bool {
	mc := cfg.Mail
	if !mc.Enabled() {
		fmt.Fprintln(stdout, "mail: off (mail.host is empty: activation emails cannot be sent)")
		return true
	}
	implicit := mc.Port == 465 && mc.TLS != mailer.TLSNone
	scheme := "smtp"
	if implicit {
		scheme = "smtps"
	}
	label := fmt.Sprintf("mail %s://%s", scheme, net.JoinHostPort(mc.Host, strconv.Itoa(mc.Port)))
	var opts []mailer.Option
	if checkMailOptions != nil {
		opts = checkMailOptions(mc)
	}
	m, err := mailer.New(mc, opts...)
	if err != nil {
		fmt.Fprintf(stdout, "%s: FAILED: %v\n", label, err)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, checkMailTimeout)
	defer cancel()
	if err := m.Check(ctx); err != nil {
		var me *mailer.Error
		if !errors.As(err, &me) {
			fmt.Fprintf(stdout, "%s: FAILED: %v\n", label, err)
			return false
		}
		// The text is "mailer: <step>: <cause>", the password redacted.
		cause := strings.TrimPrefix(me.Error(), "mailer: "+string(me.Step)+": ")
		line := fmt.Sprintf("%s: FAILED at %s: %s", label, me.Step, cause)
		if hint := mailStepHints[me.Step]; hint != "" {
			line += " (" + hint + ")"
		}
		fmt.Fprintln(stdout, line)
		return false
	}
	var tls string
	switch {
	case implicit:
		tls = "implicit TLS"
	case mc.TLS == mailer.TLSMandatory:
		tls = "STARTTLS"
	case mc.TLS == mailer.TLSOpportunistic:
		tls = "STARTTLS when offered"
	default:
		tls = "no TLS"
	}
	auth := "no authentication"
	if mc.Username != "" {
		auth = "authenticated as " + mc.Username
	}
	fmt.Fprintf(stdout, "%s: OK (%s, %s)\n", label, tls, auth)
	return true
}

// checkSMS checks the Twilio account and sender number without sending
// anything; the outbox provider has nothing to check.
func checkSMS(ctx context.Context, cfg *Config, stdout io.Writer) bool {
	if cfg.SMS.Provider != "twilio" {
		fmt.Fprintf(stdout, "sms: %s provider (nothing is sent)\n", cfg.SMS.Provider)
		return true
	}
	tc := cfg.SMS.Twilio
	label := "twilio account " + shortSID(tc.AccountSID)
	s, err := twilio.NewSender(tc, cfg.PublicURL, nil)
	if err != nil {
		fmt.Fprintf(stdout, "%s: FAILED: %v\n", label, err)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, checkTwilioTimeout)
	defer cancel()
	acct, err := s.CheckAccount(ctx)
	var ce *twilio.CheckError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(stdout, "%s: FAILED at %s: %v\n", label, ce.Step, err)
		return false
	case err != nil:
		fmt.Fprintf(stdout, "%s: FAILED: %v\n", label, err)
		return false
	case acct.From != "" && !acct.FromVoice && cfg.Enrollment.HasMethod("voice"):
		fmt.Fprintf(stdout, "%s: FAILED at from: sms.twilio.from %s cannot place calls, but enrollment.methods offers voice\n",
			label, acct.From)
		return false
	}
	var details []string
	if acct.Trial() {
		details = append(details, "trial account: texts reach verified numbers only")
	}
	if acct.From != "" {
		details = append(details, "from "+acct.From+", owned by the account")
	}
	if acct.MessagingServiceSID != "" {
		details = append(details, "messaging service "+shortSID(acct.MessagingServiceSID)+" not checked")
	}
	fmt.Fprintf(stdout, "%s: OK (%s)\n", label, strings.Join(details, "; "))
	return true
}

// shortSID shortens a Twilio SID for a report line: "AC0123…".
func shortSID(sid string) string {
	if len(sid) <= 6 {
		return sid
	}
	return sid[:6] + "…"
}
