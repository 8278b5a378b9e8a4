package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/spf13/cobra"
)

// runAudit prints the audit trail, oldest first, as a table, CSV (RFC 4180,
// for spreadsheets) or JSON, filtered by user, action and time.
func newAuditCmd(env *cmdEnv) *cobra.Command {
	var o auditOptions
	c := &cobra.Command{
		Use:         "audit",
		Short:       "print or export the audit trail (table, CSV, JSON)",
		Example:     "  replyreset audit --config config.yaml --user jdoe --since 24h\n  replyreset audit --config config.yaml --format csv > audit.csv",
		Annotations: sharedCommand,
		Args:        wantArgs(cobra.NoArgs, "audit takes no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return runAudit(c.Context(), env, o, c.OutOrStdout())
		},
	}
	fs := c.Flags()
	configFlag(fs, &o.path)
	fs.StringVar(&o.format, "format", "table", "output format: table | csv | json")
	fs.StringVar(&o.user, "user", "", "only events about this username")
	fs.StringVar(&o.action, "action", "", "only this action (reset, unlock, enroll, deactivate, ...)")
	fs.StringVar(&o.since, "since", "", "only events at or after this time: RFC 3339 (2025-03-14T10:42:00Z), a date (2025-03-14, local time) or an age (24h)")
	fs.StringVar(&o.until, "until", "", "only events before this time (same forms as -since)")
	fs.IntVar(&o.limit, "limit", 0, "only the newest N events (0 = all)")
	return c
}

type auditOptions struct {
	path, format, user, action, since, until string
	limit                                    int
}

func runAudit(ctx context.Context, env *cmdEnv, o auditOptions, stdout io.Writer) error {
	if o.format != "table" && o.format != "csv" && o.format != "json" {
		return fmt.Errorf("%w: -format must be table, csv or json", errUsage)
	}
	if o.limit < 0 {
		return fmt.Errorf("%w: -since and -limit must not be negative", errUsage)
	}
	now := time.Now()
	f := enroll.AuditFilter{Username: o.user, Action: o.action}
	var err error
	if f.Since, err = parseWhen("-since", o.since, now); err != nil {
		return err
	}
	if f.Until, err = parseWhen("-until", o.until, now); err != nil {
		return err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("%w: -since must be before -until", errUsage)
	}
	store, release, err := env.loadStore(o.path)
	if err != nil {
		return err
	}
	defer release()
	if o.limit > 0 { // the newest N, still printed oldest first
		f.Newest, f.Limit = true, o.limit
	}
	events, err := store.Audit(ctx, f)
	if err != nil {
		return err
	}
	if f.Newest {
		slices.Reverse(events)
	}
	switch o.format {
	case "json":
		return writeJSONList(stdout, events)
	case "csv":
		return enroll.WriteAuditCSV(stdout, events)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tUSER\tOUTCOME\tDETAIL")
	for _, ev := range events {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, ev.Time.Format(time.RFC3339), ev.Actor, ev.Action, ev.Username, ev.Outcome, ev.Detail)
	}
	return tw.Flush()
}

// parseWhen reads a -since or -until value: RFC 3339, a date (midnight,
// local time) or an age before now (a Go duration such as 24h or 90m).
// Empty is the zero time (no bound).
func parseWhen(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, v, time.Local); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%w: -since and -limit must not be negative", errUsage)
		}
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%w: %s %q: want RFC 3339 (2025-03-14T10:42:00Z), a date (2025-03-14) or an age (24h)", errUsage, name, v)
}
