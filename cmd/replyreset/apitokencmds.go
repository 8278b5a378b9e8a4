package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// runAPIToken manages the bearer tokens of the JSON API:
//
//	api-token create NAME   make a token and print its secret, once
//	api-token list          list tokens (never a secret)
//	api-token revoke NAME   revoke the live token NAME
func runAPIToken(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("api-token", stderr)
	path := fs.String("config", "", "configuration file (required)")
	format := formatFlag(fs)
	operands, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	const usage = "want create NAME, list or revoke NAME, e.g. replyreset api-token create -config config.yaml grafana"
	if len(operands) == 0 {
		return fmt.Errorf("%w: %s", errUsage, usage)
	}
	verb, rest := operands[0], operands[1:]
	switch {
	case (verb == "create" || verb == "revoke") && len(rest) != 1,
		verb == "list" && len(rest) != 0,
		verb != "create" && verb != "revoke" && verb != "list":
		return fmt.Errorf("%w: %s", errUsage, usage)
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	if verb != "list" {
		if err := enroll.CheckAPITokenName(rest[0]); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	_, a, release, err := env.loadApp(*path)
	if err != nil {
		return err
	}
	defer release()
	actor := "cli:" + env.user()
	switch verb {
	case "create":
		secret, t, err := a.enroll.CreateToken(ctx, rest[0], actor)
		if errors.Is(err, enroll.ErrAPITokenNameTaken) {
			return fmt.Errorf("a live token is already named %q: revoke it first, or pick another name", rest[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "API token %q created (id %s). Its secret follows; it is shown only this once and cannot be recovered.\n"+
			"Store it now, e.g. in your secret manager; send it as: Authorization: Bearer <secret>\n", t.Name, t.ID)
		fmt.Fprintln(stdout, secret)
		return nil
	case "revoke":
		t, err := a.enroll.RevokeToken(ctx, rest[0], actor)
		if errors.Is(err, enroll.ErrNotFound) {
			return fmt.Errorf("no live API token is named %q (see replyreset api-token list)", rest[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API token %q (id %s) revoked: its secret no longer works\n", t.Name, t.ID)
		return nil
	}
	list, err := a.enroll.ListTokens(ctx)
	if err != nil {
		return err
	}
	if *format == "json" {
		return writeJSONList(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tSTATE\tCREATED\tCREATED BY\tLAST USED")
	for _, t := range list {
		state, used := "live", "never"
		if t.Revoked() {
			state = "revoked " + t.RevokedAt.Local().Format(time.DateTime)
		}
		if !t.LastUsedAt.IsZero() {
			used = t.LastUsedAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.ID, state, t.CreatedAt.Local().Format(time.DateTime), t.CreatedBy, used)
	}
	return tw.Flush()
}
