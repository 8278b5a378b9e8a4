package directory

import (
	"errors"
	"fmt"
	"time"
)

// LockoutConfig is the `lockout:` section of the configuration file.
type LockoutConfig struct {
	// Enabled turns the lockout monitor (and its SMS alerts) on.
	Enabled bool `yaml:"enabled"`
	// PollInterval is how often the directory is asked for new lockouts.
	PollInterval time.Duration `yaml:"poll_interval"`
	// More than StormThreshold lockouts within StormWindow is a storm:
	// per-user texts pause and admins get one alert.
	StormThreshold int           `yaml:"storm_threshold"`
	StormWindow    time.Duration `yaml:"storm_window"`
}

// DefaultLockoutConfig returns the documented defaults.
func DefaultLockoutConfig() LockoutConfig {
	return LockoutConfig{Enabled: true, PollInterval: 30 * time.Second, StormThreshold: 10, StormWindow: 5 * time.Minute}
}

// Validate reports every problem, each prefixed by its key relative to `lockout.`.
func (c LockoutConfig) Validate() error {
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

// RemindersConfig is the `reminders:` section: password-expiry SMS stages.
type RemindersConfig struct {
	// Days are the days before expiry on which a reminder is texted; empty
	// turns reminders off.
	Days []int `yaml:"days"`
}

// DefaultRemindersConfig returns the documented defaults.
func DefaultRemindersConfig() RemindersConfig {
	return RemindersConfig{Days: []int{14, 7, 3, 1}}
}

// Validate reports every problem, each prefixed by its key relative to `reminders.`.
func (c RemindersConfig) Validate() error {
	var errs []error
	seen := map[int]bool{}
	for i, d := range c.Days {
		switch {
		case d < 1 || d > 365:
			errs = append(errs, fmt.Errorf("days[%d]: must be between 1 and 365, not %d", i, d))
		case seen[d]:
			errs = append(errs, fmt.Errorf("days[%d]: %d is listed twice", i, d))
		}
		seen[d] = true
	}
	return errors.Join(errs...)
}
