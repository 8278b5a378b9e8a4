package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/replyreset/replyreset/directory"
)

// runCheckConfig validates the file (every problem at once) and then dials
// each directory URL step by step, saying precisely what failed.
func runCheckConfig(env *cmdEnv, ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check-config", stderr)
	path := fs.String("config", "", "configuration file (required)")
	offline := fs.Bool("offline", false, "only validate the file; dial nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfigFlag(*path)
	if err != nil {
		if errors.Is(err, errUsage) {
			return err
		}
		fmt.Fprintf(stdout, "%s: INVALID\n%v\n", *path, err)
		return &exitError{code: 1, err: errors.New("the configuration file has problems (listed above)")}
	}
	fmt.Fprintf(stdout, "%s: syntax and values OK\n", *path)
	if *offline {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.Directory.Timeout*time.Duration(len(cfg.Directory.URLs))+5*time.Second)
	defer cancel()
	failed := 0
	for _, c := range directory.Diagnose(ctx, cfg.Directory) {
		if c.Err != nil {
			failed++
			fmt.Fprintf(stdout, "directory %s: FAILED at %s: %v\n", c.URL, c.Step, c.Err)
			continue
		}
		fmt.Fprintf(stdout, "directory %s: OK (%s)\n", c.URL, c.Detail)
	}
	if failed > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d directory URLs failed", failed, len(cfg.Directory.URLs))}
	}
	return nil
}
