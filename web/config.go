package web

import (
	"errors"
	"fmt"
	"time"
)

// AdminConfig is the `admin:` section of the configuration file.
type AdminConfig struct {
	// SessionTTL is how long an admin console login lasts.
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// DefaultAdminConfig returns the documented defaults.
func DefaultAdminConfig() AdminConfig {
	return AdminConfig{SessionTTL: 8 * time.Hour}
}

// Validate reports every problem, each prefixed by its key relative to `admin.`.
func (c AdminConfig) Validate() error {
	if c.SessionTTL < time.Minute {
		return errors.Join(fmt.Errorf("session_ttl: must be at least 1m, not %s", c.SessionTTL))
	}
	return nil
}
