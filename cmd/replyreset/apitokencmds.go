package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/spf13/cobra"
)

// newAPITokenCmd manages the bearer tokens of the JSON API:
//
//	api-token create -owner USER -scopes read,write NAME
//	                        make a token and print its secret, once
//	api-token list          list tokens with owner and scopes (never a secret)
//	api-token revoke NAME   revoke the live token NAME
//
// A token belongs to an admin (-owner, an enabled member of
// directory.admin_group, checked now and on every use) and carries scopes:
// read (every GET), write (every change), msp (reserved: grants nothing yet).
func newAPITokenCmd(env *cmdEnv) *cobra.Command {
	const want = "want create -owner USER -scopes read,write NAME, list or revoke NAME, " +
		"e.g. replyreset api-token create -config config.yaml -owner jdoe -scopes read,write grafana"
	var path, format, owner, scopeList string
	c := &cobra.Command{
		Use:         "api-token create NAME | list | revoke NAME",
		Short:       "create, list or revoke bearer tokens of the JSON API",
		Example:     "  replyreset api-token create grafana --owner jdoe --scopes read,write --config config.yaml\n  replyreset api-token list --config config.yaml",
		Annotations: sharedCommand,
		Args:        wantArgs(cobra.NoArgs, want),
		RunE:        func(*cobra.Command, []string) error { return usageErrorf("%s", want) },
	}
	configFlag(c.PersistentFlags(), &path)
	tokenCmd := func(use, short, example string, nargs int, want string, do func(c *cobra.Command, a *app, name string) error) *cobra.Command {
		return &cobra.Command{
			Use:     use,
			Short:   short,
			Example: example,
			Args:    wantArgs(cobra.ExactArgs(nargs), want),
			RunE: func(c *cobra.Command, args []string) error {
				name := ""
				if nargs == 1 {
					name = args[0]
					if err := enroll.CheckAPITokenName(name); err != nil {
						return usageErrorf("%v", err)
					}
				}
				if err := checkFormat(format); err != nil {
					return err
				}
				_, a, release, err := env.loadApp(path)
				if err != nil {
					return err
				}
				defer release()
				return do(c, a, name)
			},
		}
	}
	actor := func() string { return "cli:" + env.user() }
	list := tokenCmd("list", "list tokens (never a secret)", "  replyreset api-token list --config config.yaml --format json", 0,
		"list takes no arguments",
		func(c *cobra.Command, a *app, _ string) error {
			return printTokens(c.Context(), a, format, c.OutOrStdout(), c.ErrOrStderr())
		})
	formatFlag(list.Flags(), &format)
	create := tokenCmd("create NAME", "make a token owned by an admin, with scopes, and print its secret, once",
		"  replyreset api-token create grafana --owner jdoe --scopes read --config config.yaml", 1,
		"want NAME, e.g. replyreset api-token create -config config.yaml -owner jdoe -scopes read,write grafana",
		func(c *cobra.Command, a *app, name string) error {
			scopes, _ := enroll.ParseScopes(scopeList) // checked by PreRunE
			return createToken(c.Context(), a, enroll.TokenSpec{Name: name, Owner: owner, Scopes: scopes},
				actor(), c.OutOrStdout(), c.ErrOrStderr())
		})
	create.Flags().StringVar(&owner, "owner", "", "the admin (directory `USER`) the token belongs to (required)")
	create.Flags().StringVar(&scopeList, "scopes", "", "comma-separated `SCOPES`: read, write, msp (required)")
	create.PreRunE = func(*cobra.Command, []string) error {
		if strings.TrimSpace(owner) == "" {
			return usageErrorf("-owner USER is required: the admin the token belongs to (a member of directory.admin_group)")
		}
		if _, err := enroll.ParseScopes(scopeList); err != nil {
			return usageErrorf("-scopes: %s", strings.TrimPrefix(err.Error(), enroll.ErrInvalid.Error()+": "))
		}
		return nil
	}
	c.AddCommand(
		create,
		list,
		tokenCmd("revoke NAME", "revoke the live token NAME", "  replyreset api-token revoke grafana --config config.yaml", 1,
			"want NAME, e.g. replyreset api-token revoke -config config.yaml grafana",
			func(c *cobra.Command, a *app, name string) error {
				return revokeToken(c.Context(), a, name, actor(), c.OutOrStdout())
			}),
	)
	return c
}

func createToken(ctx context.Context, a *app, spec enroll.TokenSpec, actor string, stdout, stderr io.Writer) error {
	secret, t, err := a.enroll.CreateToken(ctx, spec, actor)
	switch {
	case errors.Is(err, enroll.ErrAPITokenNameTaken):
		return fmt.Errorf("a live token is already named %q: revoke it first, or pick another name", spec.Name)
	case errors.Is(err, enroll.ErrAPITokenOwner):
		return fmt.Errorf("-owner %s: a token belongs to an enabled member of directory.admin_group, and %s", spec.Owner,
			strings.TrimPrefix(err.Error(), enroll.ErrAPITokenOwner.Error()+": "))
	case err != nil:
		return err
	}
	fmt.Fprintf(stderr, "API token %q created (id %s) for %s with scopes %s. Its secret follows; it is shown only this once and cannot be recovered.\n"+
		"Store it now, e.g. in your secret manager; send it as: Authorization: Bearer <secret>\n"+
		"It stops working when %s leaves directory.admin_group or is disabled.\n", t.Name, t.ID, t.Owner, strings.Join(t.Scopes, ","), t.Owner)
	fmt.Fprintln(stdout, secret)
	return nil
}

func revokeToken(ctx context.Context, a *app, name, actor string, stdout io.Writer) error {
	t, err := a.enroll.RevokeToken(ctx, name, actor)
	if errors.Is(err, enroll.ErrNotFound) {
		return fmt.Errorf("no live API token is named %q (see replyreset api-token list)", name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API token %q (id %s) revoked: its secret no longer works\n", t.Name, t.ID)
	return nil
}

func printTokens(ctx context.Context, a *app, format string, stdout, stderr io.Writer) error {
	list, err := a.enroll.ListTokens(ctx)
	if err != nil {
		return err
	}
	if format == "json" {
		return writeJSONList(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tOWNER\tSCOPES\tSTATE\tCREATED\tCREATED BY\tLAST USED")
	legacy := false
	for _, t := range list {
		state, used, owner, scopes := "live", "never", t.Owner, strings.Join(t.Scopes, ",")
		if t.Revoked() {
			state = "revoked " + t.RevokedAt.Local().Format(time.DateTime)
		}
		if !t.LastUsedAt.IsZero() {
			used = t.LastUsedAt.Local().Format(time.DateTime)
		}
		if t.Owner == "" {
			owner, scopes = "-", "-"
			if !t.Revoked() {
				state, legacy = "refused: no owner", true
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.ID, owner, scopes, state,
			t.CreatedAt.Local().Format(time.DateTime), t.CreatedBy, used)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if legacy {
		fmt.Fprintln(stderr, "warning: tokens made before tokens had an owner and scopes are refused: create each again "+
			"(replyreset api-token create -owner USER -scopes read,write NAME) and revoke the old one")
	}
	return nil
}
