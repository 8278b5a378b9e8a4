package lockout

import (
	"errors"
	"fmt"
	"time"
)

// Config is the `lockout:` section of the configuration file.
type Config struct {
	// Enabled turns the lockout monitor (and its SMS alerts) on.
	Enabled bool `yaml:"enabled"`
	// PollInterval is how often the directory is asked for new lockouts.
	PollInterval time.Duration `yaml:"poll_interval"`
	// More than StormThreshold lockouts within StormWindow is a storm:
	// per-user texts pause and admins get one alert.
	StormThreshold int           `yaml:"storm_threshold"`
	StormWindow    time.Duration `yaml:"storm_window"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Enabled: true, PollInterval: 30 * time.Second, StormThreshold: 10, StormWindow: 5 * time.Minute}
}

// Validate reports every problem, each prefixed by its key relative to `lockout.`.
func (c Config) Validate() error {
	var errs []error
	if c.PollInterval < time.Second {
		errs = append(errs, fmt.Errorf("poll_interval: must be at least 1s, not %s", c.PollInterval))
	}
	if c.StormThreshold < 1 {
		errs = append(errs, fmt.Errorf("storm_threshold: must be at least 1, not %d", c.StormThreshold))
	}
	if c.StormWindow <= 0 {
		errs = append(errs, fmt.Errorf("storm_window: must be positive, e.g. 5m"))
	}
	return errors.Join(errs...)
}
