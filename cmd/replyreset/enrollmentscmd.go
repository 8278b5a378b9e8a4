package main

import (
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/replyreset/replyreset/enroll"
	"github.com/spf13/cobra"
)

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
