package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/replyreset/replyreset/enroll"
	"github.com/spf13/cobra"
)

func newOutboxCmd(env *cmdEnv) *cobra.Command {
	var path, to, format string
	var limit int
	var mail bool
	c := &cobra.Command{
		Use:         "outbox",
		Short:       "list queued, sent and failed SMS and calls",
		Example:     "  replyreset outbox --config config.yaml --to '+1 555 555 0101' --limit 10",
		Annotations: sharedCommand,
		Args:        wantArgs(cobra.NoArgs, "outbox takes no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return runOutbox(c, env, outboxOptions{path, to, format, limit, mail})
		},
	}
	fs := c.Flags()
	configFlag(fs, &path)
	fs.StringVar(&to, "to", "", "only messages to this number")
	fs.IntVar(&limit, "limit", 50, "the newest N messages (0 = all)")
	fs.BoolVar(&mail, "mail", false, "list the mail queue instead (recipient, kind, state, attempts, last error, next try)")
	formatFlag(fs, &format)
	return c
}

type outboxOptions struct {
	path, to, format string
	limit            int
	mail             bool
}

// runOutbox lists the durable outbox: queued, sent and failed SMS and calls.
// Bodies are shown only with the outbox provider (dry runs), where nothing
// is really sent.
func runOutbox(c *cobra.Command, env *cmdEnv, o outboxOptions) error {
	if err := checkFormat(o.format); err != nil {
		return err
	}
	if o.limit < 0 {
		return usageErrorf("-limit must not be negative")
	}
	if o.mail && o.to != "" {
		return usageErrorf("-to selects SMS by number; it does not go with -mail")
	}
	cfg, err := loadConfigFlag(o.path)
	if err != nil {
		return err
	}
	f := enroll.OutboxFilter{Limit: o.limit}
	if o.to != "" {
		if f.To, err = enroll.NormalizePhone(o.to, cfg.SMS.DefaultRegion); err != nil {
			return fmt.Errorf("-to %q: %w", o.to, err)
		}
	}
	a, release, err := env.openApp(cfg)
	if err != nil {
		return err
	}
	defer release()
	ctx, stdout := c.Context(), c.OutOrStdout()
	if o.mail {
		return listMail(ctx, a.store, o.limit, o.format, stdout)
	}
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
	if o.format == "json" {
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

// listMail prints the mail queue, newest first: never a subject or body.
func listMail(ctx context.Context, store enroll.MailQueueStore, limit int, format string, stdout io.Writer) error {
	mails, err := store.QueuedMails(ctx, limit)
	if err != nil {
		return err
	}
	for i := range mails {
		mails[i].Sealed = nil
	}
	if format == "json" {
		return writeJSONList(stdout, mails)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tTO\tKIND\tSTATE\tTRIES\tNEXT TRY\tERROR")
	for _, m := range mails {
		next := ""
		if m.Pending() {
			next = m.NextAttempt.Local().Format("01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", m.ID, m.CreatedAt.Local().Format("01-02 15:04:05"), m.To, m.Kind,
			m.State, m.Attempts, next, strings.ReplaceAll(m.LastError, "\n", " "))
	}
	return tw.Flush()
}
