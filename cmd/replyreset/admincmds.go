package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// runEnroll: the helpdesk enrolls a user in person. The user must exist in
// the directory; the phone is normalised and taken as verified.
func runEnroll(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("enroll", stderr)
	path := fs.String("config", "", "configuration file (required)")
	lang := fs.String("language", "", "the user's language (en|fr; default: the configured language)")
	actor := fs.String("by", env.user(), "who is enrolling (recorded in the audit trail)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("%w: want USER PHONE, e.g. replyreset enroll -config config.yaml jdoe '+1 555 555 0101'", errUsage)
	}
	username, rawPhone := fs.Arg(0), fs.Arg(1)
	cfg, err := loadConfigFlag(*path)
	if err != nil {
		return err
	}
	if *lang != "" && templates.NormalizeLanguage(*lang) == "" {
		return fmt.Errorf("%w: -language %q: must be en or fr", errUsage, *lang)
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
	e, err := a.enroll.EnrollInPerson(ctx, username, rawPhone, *lang, "cli:"+*actor)
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

func runEnrollments(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("enrollments", stderr)
	path := fs.String("config", "", "configuration file (required)")
	format := formatFlag(fs)
	state := fs.String("state", "", "only enrollments in this state: pending, active, frozen or deactivated")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	if *state != "" && !enroll.State(*state).Valid() {
		return fmt.Errorf("%w: -state %q: must be pending, active, frozen or deactivated", errUsage, *state)
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
	list, err := store.Enrollments(ctx)
	if err != nil {
		return err
	}
	if *state != "" {
		list = slices.DeleteFunc(list, func(e enroll.Enrollment) bool { return e.State != enroll.State(*state) })
	}
	if *format == "json" {
		return writeJSONList(stdout, list)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tPHONE\tSTATE\tLANGUAGE\tMETHOD\tUPDATED")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Username, e.Phone, e.State, e.Language, e.Method, e.UpdatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

// currentUser names the person running a CLI command for the audit trail,
// even where $USER is unset (cron, systemd, docker exec).
func currentUser() string {
	return osUser()
}

func osUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return fmt.Sprintf("uid-%d", os.Getuid())
}

// writeJSONList prints list as an indented JSON array ([] rather than null
// when empty, for scripts).
func writeJSONList[T any](w io.Writer, list []T) error {
	if list == nil {
		list = []T{}
	}
	return writeJSON(w, list)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
