package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
)

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
	a, err := openApp(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	return a, a.Close, nil
}

// runActivate activates users: each gets a single-use enrollment link by
// mail. It goes on after a failure and exits 1 if any user failed.
func runActivate(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("activate", stderr)
	path := fs.String("config", "", "configuration file (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: want one or more usernames, e.g. replyreset activate -config config.yaml jdoe asmith", errUsage)
	}
	cfg, a, release, err := env.loadApp(*path)
	if err != nil {
		return err
	}
	defer release()
	failed := 0
	for _, username := range fs.Args() {
		uctx, cancel := context.WithTimeout(ctx, 2*cfg.Directory.Timeout+time.Minute)
		res, err := a.enroll.Activate(uctx, username, "cli:"+env.user())
		cancel()
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "%s: NOT activated: %s\n", username, activationProblem(err, cfg))
			continue
		}
		fmt.Fprintf(stdout, "%s: activation email sent to %s (link valid until %s)\n",
			res.Username, res.Mail, res.ExpiresAt.Local().Format("2006-01-02 15:04"))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d users not activated", failed, fs.NArg())
	}
	return nil
}

// activationProblem says what to do about a failed activation.
func activationProblem(err error, cfg *Config) string {
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return fmt.Sprintf("not in the directory (searched %s under %s)", cfg.Directory.EffectiveUsernameAttribute(), cfg.Directory.BaseDN)
	case errors.Is(err, enroll.ErrNoMail):
		return fmt.Sprintf("no mail address in the directory (attribute %s)", cfg.Directory.MailAttribute)
	case errors.Is(err, enroll.ErrMailOff):
		return "mail is not configured (mail.host), so no activation email can be sent"
	case errors.Is(err, directory.ErrUnavailable):
		return "the directory cannot be reached: " + err.Error()
	}
	return err.Error()
}

// runOutbox lists the durable outbox: queued, sent and failed SMS and calls.
// Bodies are shown only with the outbox provider (dry runs), where nothing
// is really sent.
func runOutbox(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("outbox", stderr)
	path := fs.String("config", "", "configuration file (required)")
	to := fs.String("to", "", "only messages to this number")
	limit := fs.Int("limit", 50, "the newest N messages (0 = all)")
	format := formatFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	if *limit < 0 {
		return fmt.Errorf("%w: -limit must not be negative", errUsage)
	}
	cfg, err := loadConfigFlag(*path)
	if err != nil {
		return err
	}
	f := enroll.OutboxFilter{Limit: *limit}
	if *to != "" {
		if f.To, err = enroll.NormalizePhone(*to, cfg.SMS.DefaultRegion); err != nil {
			return fmt.Errorf("-to %q: %w", *to, err)
		}
	}
	a, release, err := env.openApp(cfg)
	if err != nil {
		return err
	}
	defer release()
	msgs, err := a.store.Messages(ctx, f)
	if err != nil {
		return err
	}
	showBody := cfg.SMS.Provider == "outbox"
	type row struct {
		enroll.OutboundMessage
		Body string `json:"body,omitempty"`
	}
	rows := make([]row, 0, len(msgs))
	for _, m := range msgs {
		r := row{OutboundMessage: m}
		r.Sealed = nil
		if showBody {
			if b, err := a.sealer.Open(m.Sealed, "outbox"); err == nil {
				r.Body = string(b)
			}
		}
		rows = append(rows, r)
	}
	if *format == "json" {
		return writeJSONList(stdout, rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tKIND\tTO\tPURPOSE\tSTATUS\tTRIES\tERROR\tBODY")
	for _, r := range rows {
		errText := r.LastError
		if r.ErrorCode != 0 {
			errText = fmt.Sprintf("%d %s", r.ErrorCode, errText)
		}
		body := strings.ReplaceAll(r.Body, "\n", " / ")
		if !showBody {
			body = "(hidden: may hold a code or password)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.CreatedAt.Local().Format("01-02 15:04:05"), r.Kind, r.To,
			r.Purpose, r.Status, r.Attempts, errText, body)
	}
	return tw.Flush()
}
