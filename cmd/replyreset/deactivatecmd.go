package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// runDeactivate turns users' SMS self-service off: each enrollment becomes
// deactivated, its phone is released (and told by SMS), a pending
// activation link stops working. It goes on after a failure, prints one
// line per user and exits 1 if any failed.
func runDeactivate(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("deactivate", stderr)
	path := fs.String("config", "", "configuration file (required)")
	actor := fs.String("by", env.user(), "who is deactivating (recorded in the audit trail)")
	users, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		return fmt.Errorf("%w: want one or more usernames, e.g. replyreset deactivate -config config.yaml jdoe asmith", errUsage)
	}
	_, a, release, err := env.loadApp(*path)
	if err != nil {
		return err
	}
	defer release()
	failed := 0
	for _, username := range users {
		uctx, cancel := context.WithTimeout(ctx, time.Minute)
		before, _ := a.store.Enrollment(uctx, username)
		e, err := a.enroll.Deactivate(uctx, username, "cli:"+*actor)
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
