package enroll

import (
	"errors"
	"fmt"
	"time"
)

// Config is the `enrollment:` section of the configuration file.
type Config struct {
	// ActivationTTL is how long an activation link (/enroll/<token>) works.
	ActivationTTL time.Duration `yaml:"activation_ttl"`
	// CodeTTL is how long a verification code works.
	CodeTTL time.Duration `yaml:"code_ttl"`
	// ResendAfter is the wait before the same code may be sent again.
	ResendAfter time.Duration `yaml:"resend_after"`
	// MaxAttempts is the number of wrong codes that kill a code.
	MaxAttempts int `yaml:"max_attempts"`
	// Methods are the verification methods offered: sms, voice, app.
	Methods []string `yaml:"methods"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		ActivationTTL: 168 * time.Hour,
		CodeTTL:       40 * time.Minute,
		ResendAfter:   60 * time.Second,
		MaxAttempts:   5,
		Methods:       []string{"sms", "voice", "app"},
	}
}

// HasMethod reports whether method (sms, voice or app) is offered.
func (c Config) HasMethod(method string) bool {
	for _, m := range c.Methods {
		if m == method {
			return true
		}
	}
	return false
}

// Validate reports every problem, each prefixed by its key relative to `enrollment.`.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	if c.ActivationTTL <= 0 {
		bad("activation_ttl", "must be positive, e.g. 168h")
	}
	if c.CodeTTL <= 0 {
		bad("code_ttl", "must be positive, e.g. 40m")
	}
	if c.ResendAfter < 0 {
		bad("resend_after", "must not be negative")
	} else if c.CodeTTL > 0 && c.ResendAfter >= c.CodeTTL {
		bad("resend_after", "must be shorter than enrollment.code_ttl (%s)", c.CodeTTL)
	}
	if c.MaxAttempts < 1 {
		bad("max_attempts", "must be at least 1, not %d", c.MaxAttempts)
	}
	if len(c.Methods) == 0 {
		bad("methods", "at least one of sms, voice, app is required")
	}
	seen := map[string]bool{}
	for i, m := range c.Methods {
		key := fmt.Sprintf("methods[%d]", i)
		switch {
		case m != "sms" && m != "voice" && m != "app":
			bad(key, "must be sms, voice or app, not %q", m)
		case seen[m]:
			bad(key, "%s is listed twice", m)
		}
		seen[m] = true
	}
	return errors.Join(errs...)
}
