package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// runAudit prints the audit trail, oldest first, as a table, CSV (RFC 4180,
// for spreadsheets) or JSON, filtered by user, action and time.
func runAudit(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit", stderr)
	path := fs.String("config", "", "configuration file (required)")
	format := fs.String("format", "table", "table | csv | json")
	user := fs.String("user", "", "only events about this username")
	action := fs.String("action", "", "only this action (reset, unlock, enroll, deactivate, ...)")
	since := fs.String("since", "", "only events at or after this time: RFC 3339 (2025-03-14T10:42:00Z), a date (2025-03-14, local time) or an age (24h)")
	until := fs.String("until", "", "only events before this time (same forms as -since)")
	limit := fs.Int("limit", 0, "only the newest N events (0 = all)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "table" && *format != "csv" && *format != "json" {
		return fmt.Errorf("%w: -format must be table, csv or json", errUsage)
	}
	if *limit < 0 {
		return fmt.Errorf("%w: -since and -limit must not be negative", errUsage)
	}
	now := time.Now()
	f := enroll.AuditFilter{Username: *user, Action: *action}
	var err error
	if f.Since, err = parseWhen("-since", *since, now); err != nil {
		return err
	}
	if f.Until, err = parseWhen("-until", *until, now); err != nil {
		return err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return fmt.Errorf("%w: -since must be before -until", errUsage)
	}
	cfg, err := loadConfigFlag(*path)
	if err != nil {
		return err
	}
	store, release, err := env.openStore(cfg)
	if err != nil {
		return err
	}
	defer release()
	if *limit > 0 { // the newest N, still printed oldest first
		f.Newest, f.Limit = true, *limit
	}
	events, err := store.Audit(ctx, f)
	if err != nil {
		return err
	}
	if f.Newest {
		slices.Reverse(events)
	}
	switch *format {
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
