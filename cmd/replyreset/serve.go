package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/password"
	"github.com/replyreset/replyreset/enroll/store/etcd"
	"github.com/replyreset/replyreset/gateway"
	"github.com/replyreset/replyreset/gateway/expiry"
	"github.com/replyreset/replyreset/gateway/jobs"
	"github.com/replyreset/replyreset/gateway/lockout"
	"github.com/replyreset/replyreset/gateway/mailer"
	"github.com/replyreset/replyreset/gateway/notify"
	"github.com/replyreset/replyreset/gateway/outbox"
	"github.com/replyreset/replyreset/gateway/twilio"
	"github.com/replyreset/replyreset/templates"
	"github.com/replyreset/replyreset/web"
	"github.com/replyreset/replyreset/web/reset"
	"github.com/spf13/cobra"
)

func newServeCmd(env *cmdEnv) *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:     "serve",
		Short:   "run the gateway (webhook, pages, API)",
		Example: "  replyreset serve --config /etc/replyreset/config.yaml",
		Args:    wantArgs(cobra.NoArgs, "serve takes no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return runServe(c.Context(), path, c.ErrOrStderr())
		},
	}
	configFlag(c.Flags(), &path)
	return c
}

func runServe(ctx context.Context, path string, stderr io.Writer) error {
	cfg, err := loadConfigFlag(path)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	app, err := openApp(cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()

	workers, stopWorkers := context.WithCancel(ctx)
	waitWorkers := app.run(workers)
	defer func() { stopWorkers(); waitWorkers() }()
	stopControl, err := serveControl(ctx, app, log)
	if err != nil {
		return err
	}
	defer stopControl()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serveHTTP(ctx, app.Handler(), ln, log)
}

// app is the wired product: logger → store → directory → gateway → web,
// built explicitly and in that order.
type app struct {
	cfg    *Config
	log    *slog.Logger
	store  enroll.Store
	sealer *enroll.Sealer
	leader jobs.Leader // who runs the jobs (openStore)
	// closeStore closes store (openStore).
	closeStore func()
	dir        *directory.Client
	catalog    *templates.Catalog
	pages      *templates.Pages
	mails      *templates.Mails
	mail       notify.Mailer     // where mail goes: mailer, the demo's mailbox, or nil (off)
	mailq      *outbox.MailQueue // every mail goes through it (nil when mail is off)
	metrics    *web.Metrics      // Prometheus metrics, fed by the store and the directory
	outbox     *outbox.Outbox
	queue      *outbox.Queue      // every SMS, call and redaction is queued through it
	budget     *gateway.SMSBudget // sms.allowed_countries and sms.budgets, for every send
	lockout    *lockout.Watch
	expiry     *expiry.SMSPasswords
	reminds    *expiry.Reminders
	held       *gateway.HeldRecovery // finishes the held RESET messages a dead node left
	status     *twilio.StatusHandler
	jobs       jobs.Status // whether this node leads the jobs, for /healthz
	webhook    *gateway.Webhook
	enroll     *enroll.Service
	reset      *reset.Site // the reset from a browser; nil when reset.web.enabled is false
	// gate refuses work while the store does not answer; its probe runs
	// on every node (run), not under the leader.
	gate *web.StoreGate
}

func openApp(cfg *Config, log *slog.Logger) (*app, error) {
	return openAppWith(cfg, log, nil)
}

// openAppWith is openApp with mail delivered to mail instead of the
// configured SMTP server (the demo's mailbox).
func openAppWith(cfg *Config, log *slog.Logger, mail notify.Mailer) (*app, error) {
	if err := openDataDir(cfg.DataDir, log); err != nil {
		return nil, err
	}
	b, sealer, err := openSealedStore(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: log, store: b.Store, leader: b.Leader, closeStore: b.Close, sealer: sealer, mail: mail}
	if err := a.wire(); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *app) wire() error {
	var err error
	a.gate = web.NewStoreGate(web.StoreGateConfig{Store: a.store, Log: a.log.With("component", "store gate")})
	a.metrics = web.NewMetrics()
	a.store.SetObserver(a.metrics)
	a.dir, err = directory.New(a.cfg.Directory, directory.Options{Logger: a.log.With("component", "directory"),
		Observer: a.metrics.ObserveDirectory, SelfService: a.cfg.Reset.SelfServicePolicy()})
	if err != nil {
		return err
	}
	gen, err := password.NewGenerator(a.cfg.Password)
	if err != nil {
		return fmt.Errorf("password: %w", err)
	}
	a.catalog, err = templates.LoadCatalog()
	if err != nil {
		return err
	}
	a.pages, err = templates.LoadPages()
	if err != nil {
		return err
	}
	a.mails, err = templates.LoadMails()
	if err != nil {
		return err
	}
	if a.mail == nil && a.cfg.Mail.Enabled() {
		m, err := mailer.New(a.cfg.Mail)
		if err != nil {
			return fmt.Errorf("mail: %w", err)
		}
		a.mail = m
	}
	var sender outbox.Sender = outbox.LocalSender{}
	if a.cfg.SMS.Provider == "twilio" {
		if sender, err = twilio.NewSender(a.cfg.SMS.Twilio, a.cfg.PublicURL, nil); err != nil {
			return fmt.Errorf("sms.twilio: %w", err)
		}
	}
	var mail notify.Mailer // nil: mail off
	if a.mail != nil {
		a.mailq = outbox.NewMailQueue(outbox.MailQueueConfig{Store: a.store, Sealer: a.sealer, Transport: a.mail,
			Log: a.log.With("component", "mail-queue")})
		mail = a.mailq
	}
	alerts := notify.NewAdminAlerts(a.dir, mail, a.mails, notify.AdminAlertOptions{Language: a.cfg.Language,
		AlertMail: a.cfg.Admin.AlertMail, Log: a.log.With("component", "admin-alerts")})
	a.budget = gateway.NewSMSBudget(a.store, gateway.SMSBudgetOptions{Budgets: a.cfg.SMS.Budgets,
		AllowedCountries: a.cfg.SMS.AllowedCountries, Alerts: alerts, Log: a.log.With("component", "sms-budget")})
	a.outbox = outbox.New(a.store, a.sealer, sender, a.log.With("component", "outbox"),
		outbox.Options{RatePerSecond: a.cfg.SMS.RatePerSecond, Budget: a.budget, Audit: a.store})
	a.queue = outbox.NewQueue(a.store, a.sealer, a.outbox.Notify)
	a.status = twilio.NewStatusHandler(twilio.StatusSettings{PublicURL: a.cfg.PublicURL, AuthToken: a.cfg.SMS.Twilio.AuthToken,
		Redactions: a.queue, Audit: a.store, Alerts: alerts, Throttle: a.store}, a.store, a.log.With("component", "status"))
	a.lockout = lockout.NewWatch(a.cfg.Lockout, lockout.Deps{Scanner: a.dir, Store: a.store, Outbox: a.queue,
		Catalog: a.catalog, Alerts: alerts, Log: a.log.With("component", "lockout")},
		lockout.Options{Language: a.cfg.Language})
	a.expiry = expiry.NewSMSPasswords(expiry.SMSPasswordDeps{Store: a.store, Directory: a.dir, Generator: gen,
		Log: a.log.With("component", "sms-expiry")}, expiry.SMSPasswordOptions{})
	a.reminds = expiry.NewReminders(a.cfg.Reminders, expiry.ReminderDeps{Directory: a.dir, Store: a.store, Outbox: a.queue,
		Catalog: a.catalog, Log: a.log.With("component", "reminders")},
		expiry.ReminderOptions{Language: a.cfg.Language})
	set := gateway.Settings{
		PublicURL:        a.cfg.PublicURL,
		AuthToken:        a.cfg.SMS.Twilio.AuthToken,
		DefaultLanguage:  a.cfg.Language,
		MaxResetsPerHour: a.cfg.Reset.MaxPerHour,
		Password:         directory.SetPasswordOptions{MustChange: a.cfg.Password.MustChange, Unlock: a.cfg.Password.Unlock},
		RequireAppCode:   a.cfg.Reset.RequireAppCode,
		Secrets:          a.sealer,
		NotMe:            alerts,
		SMSBudget:        a.budget,
		Outbox:           a.queue,
	}
	set.SMSPasswordTTL = a.cfg.Password.SMSPasswordTTL
	if mail != nil {
		set.ResetMail = notify.NewUserNotices(mail, a.mails, nil)
	}
	lookup, err := a.carrierLookup()
	if err != nil {
		return err
	}
	if lookup != nil {
		set.Carrier = gateway.CarrierCheck{Lookup: lookup, LineType: a.cfg.SMS.Lookup.LineType,
			SIMSwapMaxAge: a.cfg.SMS.Lookup.SIMSwapMaxAge, Alerts: alerts}
	}
	a.webhook = gateway.NewWebhook(set, gateway.WebhookDeps{Store: a.store, Directory: a.dir, Generator: gen,
		Catalog: a.catalog, Log: a.log.With("component", "gateway"), Gate: a.gate})
	if a.held, err = a.heldRecovery(set); err != nil {
		return err
	}
	deps := enroll.ServiceDeps{Store: a.store, Directory: a.dir, Mailer: mail, Mails: a.mails, Messages: a.catalog,
		Sealer: a.sealer, Outbox: a.queue, Log: a.log.With("component", "enroll")}
	if lookup != nil && a.cfg.SMS.Lookup.LineType {
		deps.LineChecker = lookup
	}
	if a.cfg.Reset.Web.Enabled {
		a.reset = reset.New(reset.Deps{Directory: a.dir, Store: a.store, Outbox: a.queue, Messages: a.catalog,
			Pages: a.pages, Sealer: a.sealer, Log: a.log.With("component", "web reset"), Language: a.cfg.Language,
			Secure: strings.HasPrefix(strings.ToLower(a.cfg.PublicURL), "https://"), Passwords: gen,
			MustChange: a.cfg.Password.MustChange, ChoosePassword: a.cfg.Reset.Web.ChoosePassword,
			Banned: reset.CompanyNames(a.cfg.Directory.BaseDN, a.cfg.Mail.From), Mailer: mail, Mails: a.mails})
	}
	a.enroll = enroll.NewService(deps, enroll.ServiceSettings{
		Config:           a.cfg.Enrollment,
		PublicURL:        a.cfg.PublicURL,
		DefaultLanguage:  a.cfg.Language,
		DefaultRegion:    a.cfg.SMS.DefaultRegion,
		AllowedCountries: a.cfg.SMS.AllowedCountries,
		Helpdesk:         a.cfg.Mail.From,
		SMSNumber:        a.cfg.SMS.Twilio.From,
	})
	return nil
}

// heldRecovery is the leader's recovery of the held RESET messages a
// dead node left, with the grace of this configuration.
func (a *app) heldRecovery(set gateway.Settings) (*gateway.HeldRecovery, error) {
	ttl := time.Duration(0) // a RESET's password expires only when it must be changed (webhook_expiry.go)
	if set.Password.MustChange {
		ttl = set.SMSPasswordTTL
	}
	return gateway.NewHeldRecovery(gateway.HeldRecoveryDeps{Store: a.store, Queue: a.queue, Directory: a.dir,
		Catalog: a.catalog, Log: a.log.With("component", "held-recovery")},
		gateway.HeldRecoveryOptions{Grace: gateway.HeldGrace(a.webhook.ReplyBudget(), a.cfg.Directory.Timeout), SMSPasswordTTL: ttl})
}

// carrierLookup is the Twilio Lookup client of sms.lookup, or nil when no
// check is on (or the provider is not Twilio).
func (a *app) carrierLookup() (*twilio.Lookup, error) {
	lc := a.cfg.SMS.Lookup
	if a.cfg.SMS.Provider != "twilio" || (!lc.LineType && lc.SIMSwapMaxAge <= 0) {
		return nil, nil
	}
	s, err := twilio.NewSender(a.cfg.SMS.Twilio, a.cfg.PublicURL, nil)
	if err != nil {
		return nil, fmt.Errorf("sms.lookup: %w", err)
	}
	return twilio.NewLookup(s), nil
}

// Handler returns the HTTP handler of the whole product.
func (a *app) Handler() http.Handler { return a.handler(nil) }

// handler is Handler, with the demo pages when demo is set.
func (a *app) handler(demo web.Demo) http.Handler {
	var mailq web.MailQueueSource // nil: mail off
	if a.mailq != nil {
		mailq = a.store
	}
	var resetSite web.Routes // nil: reset.web.enabled is false
	if a.reset != nil {
		resetSite = a.reset
	}
	return web.NewEcho(web.Deps{
		Logger:      a.log.With("component", "web"),
		SMSWebhook:  a.webhook,
		SMSStatus:   a.status,
		Directory:   a.dir,
		Store:       a.store,
		Version:     version,
		Enrollment:  a.enroll,
		Pages:       a.pages,
		PhoneChange: a.enroll,
		PublicURL:   a.cfg.PublicURL,
		Language:    a.cfg.Language,
		Proxies:     a.cfg.trustedProxies(),
		SMSNumber:   a.cfg.SMS.Twilio.From,
		Helpdesk:    a.cfg.Mail.From,

		AdminDirectory: a.dir,
		AdminService:   a.enroll,
		Admin:          a.cfg.Admin,
		Demo:           demo,
		SMSUsage:       a.budget,
		MailQueue:      mailq,
		Metrics:        a.metrics,
		StoreBackend:   a.cfg.Store.Backend,
		StoreHealth:    storeHealthOf(a.store),
		StoreGate:      a.gate,
		Leader:         &a.jobs,
		Reset:          resetSite,
	})
}

// storeHealthOf is the cluster report of /healthz for an etcd store, nil
// for a store that has no members.
func storeHealthOf(s enroll.Store) web.StoreHealth {
	if es, ok := s.(*etcd.Store); ok {
		return etcdHealth{es}
	}
	return nil
}

// etcdHealth is etcd.Store.Health in /healthz's terms.
type etcdHealth struct{ s *etcd.Store }

func (h etcdHealth) StoreHealth(ctx context.Context) (web.ClusterHealth, error) {
	eh, err := h.s.Health(ctx)
	out := web.ClusterHealth{Reachable: eh.Reachable}
	for _, m := range eh.Members {
		out.Members = append(out.Members, web.ClusterMember{Name: m.Name, Reachable: m.Reachable, Leader: m.Leader, Error: m.Error})
	}
	return out, err
}

// run starts the singleton jobs under the leader (openStore's: this node
// alone with bolt, an etcd election with etcd): the
// outbox and mail queue workers, the lockout watch, the SMS password
// expiry, the expiry reminders and the held-message recovery; they stop when ctx ends, and the
// returned function waits for them.
func (a *app) run(ctx context.Context) (wait func()) {
	list := []jobs.Job{{Name: "outbox", Run: a.outbox.Run}}
	if a.mailq != nil {
		list = append(list, jobs.Job{Name: "mail queue", Run: a.mailq.Run})
	}
	list = append(list, jobs.Job{Name: "lockout watch", Run: a.lockout.Run},
		jobs.Job{Name: "sms password expiry", Run: a.expiry.Run}, jobs.Job{Name: "expiry reminders", Run: a.reminds.Run},
		jobs.Job{Name: "held recovery", Run: a.held.Run})
	var wg sync.WaitGroup
	wg.Go(func() { a.gate.Run(ctx) })
	wg.Go(func() { a.jobs.Run(ctx, a.leader, a.log, list...) })
	return wg.Wait
}

// flushMail delivers, before a command run without a server exits, the
// mail it queued; what cannot be sent now waits in the queue for serve.
func (a *app) flushMail() {
	if a.mailq == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), mailer.DefaultTimeout+5*time.Second)
	defer cancel()
	a.mailq.Flush(ctx)
}

func (a *app) Close() {
	if a.webhook != nil {
		a.webhook.Close()
	}
	if a.status != nil {
		a.status.Close()
	}
	if a.budget != nil {
		a.budget.Close()
	}
	if a.dir != nil {
		a.dir.Close()
	}
	if a.closeStore != nil {
		a.closeStore()
	}
}

// serveHTTP serves until ctx ends, then shuts down gracefully: in-flight
// requests (a RESET waiting on the directory) get up to 15 s to finish.
func serveHTTP(ctx context.Context, h http.Handler, ln net.Listener, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("replyreset listening", "addr", ln.Addr().String(), "version", version)
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// openApp returns the whole product for cfg: the running server's when the
// command runs inside it, else one wired here (no workers started).
// loadApp loads the -config file and opens the app on it (openApp).
func (env *cmdEnv) loadApp(path string) (*Config, *app, func(), error) {
	cfg, err := loadConfigFlag(path)
	if err != nil {
		return nil, nil, nil, err
	}
	a, release, err := env.openApp(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, a, release, nil
}

func (env *cmdEnv) openApp(cfg *Config) (*app, func(), error) {
	if env.server != nil {
		if err := env.sameDataDir(cfg); err != nil {
			return nil, nil, err
		}
		return env.server, func() {}, nil
	}
	if sock := controlSocket(cfg); controlAnswers(sock) {
		return nil, nil, &serverRunningError{socket: sock}
	}
	// The commands' own log is silent; what data_dir needs fixing is said.
	if err := openDataDir(cfg.DataDir, slog.Default()); err != nil {
		return nil, nil, err
	}
	a, err := openApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	return a, func() { a.flushMail(); a.Close() }, nil
}
