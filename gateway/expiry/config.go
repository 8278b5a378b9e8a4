package expiry

import (
	"errors"
	"fmt"
)

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
