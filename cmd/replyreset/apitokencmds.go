package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/spf13/cobra"
)

// newAPITokenCmd manages the bearer tokens of the JSON API:
//
//	api-token create NAME   make a token and print its secret, once
//	api-token list          list tokens (never a secret)
//	api-token revoke NAME   revoke the live token NAME
func newAPITokenCmd(env *cmdEnv) *cobra.Command {
	const want = "want create NAME, list or revoke NAME, e.g. replyreset api-token create -config config.yaml grafana"
	var path, format string
	c := &cobra.Command{
		Use:         "api-token create NAME | list | revoke NAME",
		Short:       "create, list or revoke bearer tokens of the JSON API",
		Example:     "  replyreset api-token create grafana --config config.yaml\n  replyreset api-token list --config config.yaml",
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
			return printTokens(c.Context(), a, format, c.OutOrStdout())
		})
	formatFlag(list.Flags(), &format)
	c.AddCommand(
		tokenCmd("create NAME", "make a token and print its secret, once", "  replyreset api-token create grafana --config config.yaml", 1,
			"want NAME, e.g. replyreset api-token create -config config.yaml grafana",
			func(c *cobra.Command, a *app, name string) error {
				return createToken(c.Context(), a, name, actor(), c.OutOrStdout(), c.ErrOrStderr())
			}),
		list,
		tokenCmd("revoke NAME", "revoke the live token NAME", "  replyreset api-token revoke grafana --config config.yaml", 1,
			"want NAME, e.g. replyreset api-token revoke -config config.yaml grafana",
			func(c *cobra.Command, a *app, name string) error {
				return revokeToken(c.Context(), a, name, actor(), c.OutOrStdout())
			}),
	)
	return c
}

func createToken(ctx context.Context, a *app, name, actor string, stdout, stderr io.Writer) error {
	secret, t, err := a.enroll.CreateToken(ctx, name, actor)
	if errors.Is(err, enroll.ErrAPITokenNameTaken) {
		return fmt.Errorf("a live token is already named %q: revoke it first, or pick another name", name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "API token %q created (id %s). Its secret follows; it is shown only this once and cannot be recovered.\n"+
		"Store it now, e.g. in your secret manager; send it as: Authorization: Bearer <secret>\n", t.Name, t.ID)
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

func printTokens(ctx context.Context, a *app, format string, stdout io.Writer) error {
	list, err := a.enroll.ListTokens(ctx)
	if err != nil {
		return err
	}
	if format == "json" {
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
