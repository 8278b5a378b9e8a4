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
