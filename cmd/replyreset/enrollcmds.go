package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
	"github.com/spf13/cobra"
)

func newEnrollCmd(env *cmdEnv) *cobra.Command {
	var o enrollOptions
	c := &cobra.Command{
		Use:   "enroll USER PHONE",
		Short: "enroll USER PHONE in person (helpdesk): the phone is taken as verified",
		Long: `Enroll USER with PHONE in person (helpdesk): the user must exist in the
directory, the phone is normalised and taken as verified, the act is
audited and the user gets the confirmation SMS.`,
		Example:     "  replyreset enroll jdoe '+1 555 555 0101' --config config.yaml",
		Annotations: sharedCommand,
		Args:        wantArgs(cobra.ExactArgs(2), "want USER PHONE, e.g. replyreset enroll -config config.yaml jdoe '+1 555 555 0101'"),
		RunE: func(c *cobra.Command, args []string) error {
			if o.by == "" {
				o.by = env.user()
			}
			return runEnroll(c.Context(), env, o, args[0], args[1], c.OutOrStdout())
		},
	}
	fs := c.Flags()
	configFlag(fs, &o.path)
	fs.StringVar(&o.lang, "language", "", "the user's language (en|fr; default: the configured language)")
	fs.StringVar(&o.by, "by", "", "who is enrolling, recorded in the audit trail (default: the user running the command)")
	return c
}

type enrollOptions struct{ path, lang, by string }

// runEnroll: the helpdesk enrolls a user in person. The user must exist in
// the directory; the phone is normalised and taken as verified.
func runEnroll(ctx context.Context, env *cmdEnv, o enrollOptions, username, rawPhone string, stdout io.Writer) error {
	cfg, err := loadConfigFlag(o.path)
	if err != nil {
		return err
	}
	if o.lang != "" && templates.NormalizeLanguage(o.lang) == "" {
		return fmt.Errorf("%w: -language %q: must be en or fr", errUsage, o.lang)
	}
	// Check the number before anything else: a typo is the common mistake.
	if _, err := enroll.NormalizePhone(rawPhone, cfg.SMS.DefaultRegion); err != nil {
		return fmt.Errorf("phone %q: %w", rawPhone, err)
	}
	a, release, err := env.openApp(cfg)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.Directory.Timeout+30*time.Second)
	defer cancel()
	e, err := a.enroll.EnrollInPerson(ctx, username, rawPhone, o.lang, "cli:"+o.by)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return fmt.Errorf("user %q is not in the directory (searched %s under %s)", username, cfg.Directory.EffectiveUsernameAttribute(), cfg.Directory.BaseDN)
	case errors.Is(err, enroll.ErrPhoneTaken):
		phone, _ := enroll.NormalizePhone(rawPhone, cfg.SMS.DefaultRegion)
		holder := "another user"
		if other, err := a.store.EnrollmentByPhone(ctx, phone); err == nil {
			holder = other.Username
		}
		return fmt.Errorf("%s is already enrolled by %s; deactivate that enrollment first", phone, holder)
	case errors.Is(err, enroll.ErrCountryNotAllowed):
		return fmt.Errorf("phone %q: numbers from this country are not accepted (sms.allowed_countries)", rawPhone)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "enrolled %s with %s (%s); confirmation SMS queued\n", e.Username, e.Phone, e.Language)
	return nil
}

func newEnrollmentsCmd(env *cmdEnv) *cobra.Command {
	var path, format, state string
	c := &cobra.Command{
		Use:         "enrollments",
		Short:       "list enrollments",
		Example:     "  replyreset enrollments --config config.yaml --state active --format json",
		Annotations: sharedCommand,
		Args:        wantArgs(cobra.NoArgs, "enrollments takes no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if state != "" && !enroll.State(state).Valid() {
				return usageErrorf("-state %q: must be pending, active, frozen or deactivated", state)
			}
			store, release, err := env.loadStore(path)
			if err != nil {
				return err
			}
			defer release()
			list, err := store.Enrollments(c.Context())
			if err != nil {
				return err
			}
			if state != "" {
				list = slices.DeleteFunc(list, func(e enroll.Enrollment) bool { return e.State != enroll.State(state) })
			}
			stdout := c.OutOrStdout()
			if format == "json" {
				return writeJSONList(stdout, list)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "USERNAME\tPHONE\tSTATE\tLANGUAGE\tMETHOD\tUPDATED")
			for _, e := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Username, e.Phone, e.State, e.Language, e.Method, e.UpdatedAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	fs := c.Flags()
	configFlag(fs, &path)
	formatFlag(fs, &format)
	fs.StringVar(&state, "state", "", "only enrollments in this state: pending, active, frozen or deactivated")
	return c
}
