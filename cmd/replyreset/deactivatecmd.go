package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/spf13/cobra"
)

// runDeactivate turns users' SMS self-service off: each enrollment becomes
// deactivated, its phone is released (and told by SMS), a pending
// activation link stops working. It goes on after a failure, prints one
// line per user and exits 1 if any failed.
func newDeactivateCmd(env *cmdEnv) *cobra.Command {
	var path, by string
	c := &cobra.Command{
		Use:         "deactivate USER...",
		Short:       "deactivate USER...: turn SMS self-service off (the phone is released and told)",
		Example:     "  replyreset deactivate jdoe asmith --config config.yaml",
		Annotations: sharedCommand,
		Args:        wantArgs(cobra.MinimumNArgs(1), "want one or more usernames, e.g. replyreset deactivate -config config.yaml jdoe asmith"),
		RunE: func(c *cobra.Command, users []string) error {
			if by == "" {
				by = env.user()
			}
			return runDeactivate(c.Context(), env, path, by, users, c.OutOrStdout())
		},
	}
	configFlag(c.Flags(), &path)
	c.Flags().StringVar(&by, "by", "", "who is deactivating, recorded in the audit trail (default: the user running the command)")
	return c
}

func runDeactivate(ctx context.Context, env *cmdEnv, path, actor string, users []string, stdout io.Writer) error {
	_, a, release, err := env.loadApp(path)
	if err != nil {
		return err
	}
	defer release()
	failed := 0
	for _, username := range users {
		uctx, cancel := context.WithTimeout(ctx, time.Minute)
		before, _ := a.store.Enrollment(uctx, username)
		e, err := a.enroll.Deactivate(uctx, username, "cli:"+actor)
		cancel()
		switch {
		case errors.Is(err, enroll.ErrNotFound):
			failed++
			fmt.Fprintf(stdout, "%s: NOT deactivated: no enrollment and no pending activation\n", username)
		case err != nil:
			failed++
			fmt.Fprintf(stdout, "%s: NOT deactivated: %v\n", username, err)
		case before.State == enroll.StateDeactivated && before.UpdatedAt.Equal(e.UpdatedAt):
			fmt.Fprintf(stdout, "%s: already deactivated\n", e.Username)
		case before.State == enroll.StateActive || before.State == enroll.StateFrozen:
			fmt.Fprintf(stdout, "%s: deactivated (was %s); phone %s released and told by SMS\n", e.Username, before.State, e.Phone)
		default:
			fmt.Fprintf(stdout, "%s: deactivated; the pending activation link no longer works\n", e.Username)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d users not deactivated", failed, len(users))
	}
	return nil
}
