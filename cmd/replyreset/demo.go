package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/demodir"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web"
	"github.com/spf13/cobra"
)

// demoNumber is the company number of the demo (a fictional 555 number).
const demoNumber = "+15550100000"

// runDemo runs the whole product on the loopback interface with nothing
// installed or configured: an in-process directory speaking the AD
// dialect over LDAPS, SMS kept in the outbox and shown on a phone
// simulator, mail kept in a mailbox page, data in a temporary directory.
func newDemoCmd(_ *cmdEnv) *cobra.Command {
	var o demoOptions
	c := &cobra.Command{
		Use:     "demo",
		Short:   "run the whole product on 127.0.0.1 with a sample directory, phone simulator and mailbox",
		Example: "  replyreset demo\n  replyreset demo --listen 127.0.0.1:9090 --language fr",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unexpected argument %q", args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			o.Log = c.ErrOrStderr()
			return runDemo(c.Context(), o, c.OutOrStdout())
		},
	}
	fs := c.Flags()
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to serve on: a loopback address (127.0.0.1 or ::1) and a port")
	fs.StringVar(&o.DataDir, "data", "", "keep the data file in `DIR` (default: a temporary directory, removed at exit)")
	fs.StringVar(&o.Language, "language", "en", "default language of texts and pages: en or fr")
	fs.BoolVarP(&o.Verbose, "verbose", "v", false, "log every request and operation")
	return c
}

func runDemo(ctx context.Context, o demoOptions, stdout io.Writer) error {
	if err := loopbackAddr(o.Listen); err != nil {
		return usageErrorf("-listen %q: %v", o.Listen, err)
	}
	if !templates.SupportedLanguage(o.Language) {
		return usageErrorf("-language must be en or fr")
	}
	o.Progress = stdout // what the start is doing, before the banner
	d, err := startDemo(ctx, o)
	if err != nil {
		return err
	}
	defer d.Close()
	d.banner(stdout)
	return d.Serve(ctx)
}

// loopbackAddr accepts host:port whose host is a loopback IP or localhost:
// the demo has sample passwords and must not be reachable from elsewhere.
func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return errors.New("the demo listens on loopback only (127.0.0.1 or [::1])")
	}
	return nil
}

type demoOptions struct {
	Listen, DataDir, Language string
	Verbose                   bool
	Log                       io.Writer
	Progress                  io.Writer // what the start is doing, for the person waiting; nil = quiet
}

// demo is a running demo: directory, app and listener.
type demo struct {
	dir      *demodir.Server
	app      *app
	ln       net.Listener
	url      string
	dataDir  string
	tempData bool
	backend  *demoBackend
	log      *slog.Logger
}

func startDemo(ctx context.Context, opt demoOptions) (_ *demo, err error) {
	level := "warn"
	if opt.Verbose {
		level = "debug"
	}
	log := newLogger(opt.Log, level, "text")
	d := &demo{log: log}
	step := func(what string) {
		if opt.Progress != nil {
			fmt.Fprintln(opt.Progress, "replyreset demo: "+what)
		}
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.ln, err = net.Listen("tcp", opt.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w (another demo running? use -listen 127.0.0.1:8081)", opt.Listen, err)
	}
	d.url = "http://" + d.ln.Addr().String()
	if d.dataDir = opt.DataDir; d.dataDir == "" {
		if d.dataDir, err = os.MkdirTemp("", "replyreset-demo-"); err != nil {
			return nil, err
		}
		d.tempData = true
	} else if err = os.MkdirAll(d.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("--data %s: %w", d.dataDir, err)
	}
	step("starting the demo directory (AD dialect, LDAPS on loopback)…")
	if d.dir, err = demodir.Start(ctx, demodir.Options{Seed: true, LockoutDuration: demodir.DemoLockoutDuration, CAFile: d.dataDir + "/demo-ca.pem",
		Logger: log.With("component", "demo-directory")}); err != nil {
		return nil, fmt.Errorf("start the demo directory: %w", err)
	}
	token := make([]byte, 16)
	_, _ = rand.Read(token)
	cfg := DefaultConfig()
	cfg.Listen, cfg.PublicURL, cfg.DataDir = d.ln.Addr().String(), d.url, d.dataDir
	if opt.Language != "" {
		cfg.Language = opt.Language
	}
	cfg.Log = LogConfig{Level: level, Format: "text"}
	cfg.Directory = d.dir.DirectoryConfig()
	cfg.SMS.Provider = "outbox"
	cfg.SMS.Twilio.AuthToken = hex.EncodeToString(token) // signs the simulator's webhooks; never leaves the process
	cfg.SMS.Twilio.From = demoNumber
	cfg.Lockout.PollInterval = 2 * time.Second // lockout texts within seconds
	cfg.SMS.Budgets.PerNumberDay = 100         // room to play with one phone; the budgets still show on the dashboard
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("demo configuration: %w", err)
	}
	mailbox := notify.NewDemoMailbox(nil)
	step("opening the data store in " + d.dataDir + " and loading the pages…")
	if d.app, err = openAppWith(&cfg, log, mailbox); err != nil {
		return nil, err
	}
	d.backend = &demoBackend{dir: d.dir, client: d.app.dir, mailbox: mailbox,
		phone: twilio.NewDemoPhone(d.app.store, d.app.sealer, twilio.DemoPhoneOptions{PostURL: d.url + "/sms/twilio",
			PublicURL: d.url, AuthToken: cfg.SMS.Twilio.AuthToken, Number: demoNumber})}
	step("ready at " + d.url)
	return d, nil
}

// Serve runs the workers and the web server until ctx ends.
func (d *demo) Serve(ctx context.Context) error {
	workers, stop := context.WithCancel(ctx)
	wait := d.app.run(workers)
	defer func() { stop(); wait() }()
	ln := d.ln
	d.ln = nil // serveHTTP closes it
	return serveHTTP(ctx, d.app.handler(d.backend), ln, d.log)
}

func (d *demo) banner(w io.Writer) {
	admin := d.dir.HelpdeskAdmin()
	fmt.Fprintf(w, `
ReplyReset demo is running. Nothing leaves this machine.

  Admin console    %[1]s/admin/
                   sign in as %[2]s, password %[3]s
  Phone simulator  %[1]s/demo/phone
  Mailbox          %[1]s/demo/mail

  Try it: activate a user in the console, open the email in the mailbox,
  enroll the phone, then on the simulator press "Fail a login 5 times"
  and answer the lockout text with RESET.

  Sample employees' password: %[4]s. Company number: %[5]s.
  Directory (AD dialect): %[6]s, base %[7]s
  Data: %[8]s%[9]s

Press Ctrl-C to stop.
`, d.url, admin.Username, admin.Password, demodir.SamplePassword, demoNumber, d.dir.URL(), d.dir.BaseDN(),
		d.dataDir, map[bool]string{true: " (removed at exit)", false: ""}[d.tempData])
}

// Close stops everything and removes a temporary data directory.
func (d *demo) Close() {
	if d.ln != nil {
		d.ln.Close()
	}
	if d.app != nil {
		d.app.Close()
	}
	if d.dir != nil {
		d.dir.Close()
	}
	if d.tempData {
		os.RemoveAll(d.dataDir)
	}
}

// demoBackend is what the demo pages use (web.Demo).
type demoBackend struct {
	dir     *demodir.Server
	client  *directory.Client
	phone   *twilio.DemoPhone
	mailbox *notify.DemoMailbox
}

var _ web.Demo = (*demoBackend)(nil)

func (b *demoBackend) Users() []web.DemoUser {
	var out []web.DemoUser
	for _, u := range b.dir.Users() {
		if u.Mobile == "" {
			continue
		}
		out = append(out, web.DemoUser{Username: u.Username, DisplayName: u.DisplayName, Phone: u.Mobile, Mail: u.Mail,
			Password: demodir.SamplePassword})
	}
	return out
}

func (b *demoBackend) Send(ctx context.Context, phone, body string) (string, error) {
	return b.phone.Send(ctx, phone, body)
}

func (b *demoBackend) Conversation(ctx context.Context, phone string) ([]twilio.DemoMessage, error) {
	return b.phone.Conversation(ctx, phone)
}

func (b *demoBackend) Mails() []notify.DemoMail { return b.mailbox.Mails() }

func (b *demoBackend) Mail(id int) (notify.DemoMail, error) { return b.mailbox.Mail(id) }

// Bind signs in over LDAP with the product's directory client, as a
// workstation would.
func (b *demoBackend) Bind(ctx context.Context, username, password string) error {
	_, err := b.client.Authenticate(ctx, username, password)
	return err
}
