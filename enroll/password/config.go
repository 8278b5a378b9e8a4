package password

import (
	"errors"
	"fmt"
	"time"
)

// Password styles.
const (
	StyleReadable = "readable" // no look-alike characters (O/0, l/1/I, ...)
	StyleRandom   = "random"   // full printable alphabet
	StyleWords    = "words"    // dictionary words joined, with a digit and a symbol
)

// Config is the `password:` section of the configuration file.
type Config struct {
	Length         int           `yaml:"length"`
	Style          string        `yaml:"style"`
	MustChange     bool          `yaml:"must_change"`
	Unlock         bool          `yaml:"unlock"`
	SMSPasswordTTL time.Duration `yaml:"sms_password_ttl"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Length: 12, Style: StyleReadable, MustChange: true, Unlock: true, SMSPasswordTTL: 10 * time.Minute}
}

// Validate reports every problem, each prefixed by its key relative to `password.`.
func (c Config) Validate() error {
	var errs []error
	if c.Length < 8 || c.Length > 64 {
		errs = append(errs, fmt.Errorf("length: must be between 8 and 64, not %d", c.Length))
	}
	switch c.Style {
	case StyleReadable, StyleRandom, StyleWords:
	default:
		errs = append(errs, fmt.Errorf("style: must be readable, random or words, not %q", c.Style))
	}
	if c.SMSPasswordTTL < 0 {
		errs = append(errs, fmt.Errorf("sms_password_ttl: must not be negative (0 turns re-randomising off)"))
	}
	return errors.Join(errs...)
}
