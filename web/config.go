package web

import (
	"errors"
	"fmt"
	"net/mail"
	"time"
)

// AdminConfig is the `admin:` section of the configuration file.
type AdminConfig struct {
	// SessionTTL is how long an admin console login lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// AlertMail are addresses that get every security alert (NOT ME,
	// lockout storm, SIM swap, SMS budget, privileged refusal) besides the
	// members of directory.admin_group that have a mail address.
	AlertMail []string `yaml:"alert_mail"`
}

// DefaultAdminConfig returns the documented defaults.
func DefaultAdminConfig() AdminConfig {
	return AdminConfig{SessionTTL: 8 * time.Hour}
}

// Validate reports every problem, each prefixed by its key relative to `admin.`.
func (c AdminConfig) Validate() error {
	var errs []error
	if c.SessionTTL < time.Minute {
		errs = append(errs, fmt.Errorf("session_ttl: must be at least 1m, not %s", c.SessionTTL))
	}
	for i, a := range c.AlertMail {
		if _, err := mail.ParseAddress(a); err != nil {
			errs = append(errs, fmt.Errorf("alert_mail[%d]: %q is not a mail address (e.g. security@example.com)", i, a))
		}
	}
	return errors.Join(errs...)
}
