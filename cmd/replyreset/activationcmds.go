package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/spf13/cobra"
)

func newActivateCmd(env *cmdEnv) *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:         "activate USER...",
		Short:       "activate USER...: mail each user a single-use enrollment link",
		Example:     "  replyreset activate jdoe asmith --config config.yaml",
		Annotations: sharedCommand,
		Args:        wantArgs(cobra.MinimumNArgs(1), "want one or more usernames, e.g. replyreset activate -config config.yaml jdoe asmith"),
		RunE: func(c *cobra.Command, users []string) error {
			return runActivate(c.Context(), env, path, users, c.OutOrStdout())
		},
	}
	configFlag(c.Flags(), &path)
	return c
}

// runActivate activates users: each gets a single-use enrollment link by
// mail. It goes on after a failure and exits 1 if any user failed.
func runActivate(ctx context.Context, env *cmdEnv, path string, users []string, stdout io.Writer) error {
	cfg, a, release, err := env.loadApp(path)
	if err != nil {
		return err
	}
	defer release()
	failed := 0
	for _, username := range users {
		uctx, cancel := context.WithTimeout(ctx, 2*cfg.Directory.Timeout+time.Minute)
		res, err := a.enroll.Activate(uctx, username, "cli:"+env.user())
		cancel()
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "%s: NOT activated: %s\n", username, activationProblem(err, cfg))
			continue
		}
		fmt.Fprintf(stdout, "%s: activation email to %s queued (link valid until %s)\n",
			res.Username, res.Mail, res.ExpiresAt.Local().Format("2006-01-02 15:04"))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d users not activated", failed, len(users))
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
