package gateway

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/replyreset/replyreset/directory"
)

// SMSConfig is the `sms:` section of the configuration file.
type SMSConfig struct {
	// Provider is "twilio", or "outbox": messages are written to the data
	// file (demo and dry runs) and nothing leaves the machine.
	Provider string       `yaml:"provider"`
	Twilio   TwilioConfig `yaml:"twilio"`
	// DefaultRegion (ISO 3166 alpha-2) is assumed for numbers typed
	// without a country code.
	DefaultRegion string `yaml:"default_region"`
	// AllowedCountries (ISO 3166 alpha-2) limits enrollment and sending to
	// these countries; empty allows all.
	AllowedCountries []string `yaml:"allowed_countries"`
	// RatePerSecond paces low-priority sends (a long code's rate).
	RatePerSecond float64      `yaml:"rate_per_second"`
	Budgets       BudgetConfig `yaml:"budgets"`
	Lookup        LookupConfig `yaml:"lookup"`
}

// TwilioConfig is `sms.twilio:`. The loader fills AuthToken from
// AuthTokenFile when that is set.
type TwilioConfig struct {
	AccountSID          string `yaml:"account_sid"`
	AuthToken           string `yaml:"auth_token"`
	AuthTokenFile       string `yaml:"auth_token_file"`
	From                string `yaml:"from"`                  // E.164 sender number
	MessagingServiceSID string `yaml:"messaging_service_sid"` // instead of From
	// APIBaseURL replaces https://api.twilio.com and, for sms.lookup,
	// https://lookups.twilio.com (Twilio-compatible providers, proxies,
	// tests; the paths do not overlap); empty means Twilio.
	APIBaseURL string `yaml:"api_base_url"`
}

// BudgetConfig is `sms.budgets:`: the most messages sent per day. A zero
// limit means no limit.
type BudgetConfig struct {
	PerNumberDay  int            `yaml:"per_number_day"`  // to one phone number
	PerCountryDay map[string]int `yaml:"per_country_day"` // region code → limit
	PerDay        int            `yaml:"per_day"`         // in total
}

// LookupConfig is `sms.lookup:`: Twilio Lookup v2 checks made before a
// number is enrolled (line type) and before a password is texted (line
// type, SIM swap); see CarrierCheck. Only provider twilio makes them.
type LookupConfig struct {
	LineType bool `yaml:"line_type"` // refuse numbers that cannot receive SMS
	// SIMSwapMaxAge blocks SMS resets when the SIM changed more recently
	// than this; 0 turns the check off.
	SIMSwapMaxAge time.Duration `yaml:"sim_swap_max_age"`
}

// DefaultSMSConfig returns the documented defaults.
func DefaultSMSConfig() SMSConfig {
	return SMSConfig{
		Provider:      "twilio",
		DefaultRegion: "US",
		RatePerSecond: 1,
		Budgets:       BudgetConfig{PerNumberDay: 10, PerCountryDay: map[string]int{}, PerDay: 1000},
	}
}

var (
	e164Pattern      = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	twilioSIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{32}$`)
	twilioSIDKinds   = map[string]string{"AC": "account SID", "MG": "messaging service SID"}
)

// Validate reports every problem at once; each error starts with the key
// path relative to `sms.` (e.g. "twilio.from: ...").
func (c SMSConfig) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	switch c.Provider {
	case "twilio":
		c.Twilio.validate(bad)
	case "outbox":
	default:
		bad("provider", "must be twilio or outbox, not %q", c.Provider)
	}
	if p := regionProblem(c.DefaultRegion); p != "" {
		bad("default_region", "%s", p)
	}
	seen := map[string]bool{}
	for i, code := range c.AllowedCountries {
		key := fmt.Sprintf("allowed_countries[%d]", i)
		if p := regionProblem(code); p != "" {
			bad(key, "%s", p)
		} else if seen[code] {
			bad(key, "%s is listed twice", code)
		}
		seen[code] = true
	}
	if !(c.RatePerSecond > 0) || math.IsInf(c.RatePerSecond, 0) {
		bad("rate_per_second", "must be a positive number, e.g. 1")
	}
	if c.Budgets.PerNumberDay < 0 {
		bad("budgets.per_number_day", "must not be negative (0 = no limit)")
	}
	if c.Budgets.PerDay < 0 {
		bad("budgets.per_day", "must not be negative (0 = no limit)")
	}
	codes := make([]string, 0, len(c.Budgets.PerCountryDay))
	for code := range c.Budgets.PerCountryDay {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		key := "budgets.per_country_day." + code
		if p := regionProblem(code); p != "" {
			bad(key, "%s", p)
		}
		if c.Budgets.PerCountryDay[code] < 0 {
			bad(key, "must not be negative (0 = no limit)")
		}
	}
	if c.Lookup.SIMSwapMaxAge < 0 {
		bad("lookup.sim_swap_max_age", "must not be negative (0 turns the check off)")
	}
	return errors.Join(errs...)
}

func (t TwilioConfig) validate(bad func(key, format string, a ...any)) {
	if t.AccountSID == "" {
		bad("twilio.account_sid", "required for provider twilio (AC followed by 32 hex digits, from the Twilio console)")
	} else if p := twilioSIDProblem(t.AccountSID, "AC"); p != "" {
		bad("twilio.account_sid", "%s", p)
	}
	if t.AuthToken == "" {
		bad("twilio.auth_token", "required for provider twilio (or twilio.auth_token_file)")
	}
	switch {
	case t.From == "" && t.MessagingServiceSID == "":
		bad("twilio.from", "required for provider twilio: the sending number in E.164, e.g. +15550001111 (or twilio.messaging_service_sid)")
	case t.From != "" && t.MessagingServiceSID != "":
		bad("twilio.messaging_service_sid", "set either twilio.from or twilio.messaging_service_sid, not both")
	case t.From != "" && !e164Pattern.MatchString(t.From):
		bad("twilio.from", "%q is not an E.164 number (+ country code and number, no spaces, e.g. +15550001111)", t.From)
	case t.MessagingServiceSID != "":
		if p := twilioSIDProblem(t.MessagingServiceSID, "MG"); p != "" {
			bad("twilio.messaging_service_sid", "%s", p)
		}
	}
	if t.APIBaseURL != "" {
		u, err := url.Parse(t.APIBaseURL)
		switch {
		case err != nil:
			bad("twilio.api_base_url", "not a URL: %v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("twilio.api_base_url", "must be an http:// or https:// URL, not %q", t.APIBaseURL)
		case u.Host == "":
			bad("twilio.api_base_url", "host is missing in %q", t.APIBaseURL)
		}
	}
}

// twilioSIDProblem checks a Twilio SID: a two-letter prefix and 32 hex digits.
func twilioSIDProblem(sid, prefix string) string {
	rest, ok := strings.CutPrefix(sid, prefix)
	if !ok || len(sid) != 34 || !twilioSIDPattern.MatchString(rest) {
		return fmt.Sprintf("%q is not a Twilio %s (%s followed by 32 hex digits, 34 characters)", sid, twilioSIDKinds[prefix], prefix)
	}
	return ""
}

// regionProblem explains why code is not a region phone numbers can be
// parsed for, or returns "".
func regionProblem(code string) string {
	regions := phonenumbers.GetSupportedRegions()
	switch {
	case regions[code]:
		return ""
	case regions[strings.ToUpper(code)]:
		return fmt.Sprintf("region codes are upper case: %s", strings.ToUpper(code))
	default:
		return fmt.Sprintf("%q is not a supported ISO 3166 alpha-2 region code (e.g. US, GB, FR)", code)
	}
}

// ResetConfig is the `reset:` section of the configuration file.
type ResetConfig struct {
	// RequireAppCode makes RESET carry the authenticator code ("RESET 123456").
	RequireAppCode bool `yaml:"require_app_code"`
	// MaxPerHour is the most resets per phone number per hour.
	MaxPerHour int `yaml:"max_per_hour"`
	// AllowGroups (DNs or names): when not empty, only their members
	// (nested) may use self-service; empty: every user under
	// directory.user_filter.
	AllowGroups []string `yaml:"allow_groups"`
	// DenyGroups (DNs or names): their members (nested) never may.
	DenyGroups []string `yaml:"deny_groups"`
	// ProtectPrivileged refuses self-service to privileged accounts
	// (adminCount=1, the protected AD groups, directory.admin_group).
	ProtectPrivileged bool `yaml:"protect_privileged"`
	// Web is the reset from a browser (/reset, web/reset).
	Web WebResetConfig `yaml:"web"`
}

// WebResetConfig is `reset.web`: the reset and unlock pages.
type WebResetConfig struct {
	Enabled bool `yaml:"enabled"` // serve /reset
	// ChoosePassword lets the user choose the new password; false: a
	// generated one only.
	ChoosePassword bool `yaml:"choose_password"`
}

// DefaultResetConfig returns the documented defaults.
func DefaultResetConfig() ResetConfig {
	return ResetConfig{MaxPerHour: 3, ProtectPrivileged: true, Web: WebResetConfig{Enabled: true, ChoosePassword: true}}
}

// SelfServicePolicy is the directory's view of the section: who may use
// self-service (directory.Client.CheckSelfService).
func (c ResetConfig) SelfServicePolicy() directory.SelfServicePolicy {
	return directory.SelfServicePolicy{AllowPrivileged: !c.ProtectPrivileged,
		AllowGroups: c.AllowGroups, DenyGroups: c.DenyGroups}
}

// Validate reports every problem, each prefixed by its key relative to `reset.`.
func (c ResetConfig) Validate() error {
	var errs []error
	if c.MaxPerHour < 1 {
		errs = append(errs, fmt.Errorf("max_per_hour: must be at least 1, not %d", c.MaxPerHour))
	}
	for _, list := range []struct {
		key    string
		groups []string
	}{{"allow_groups", c.AllowGroups}, {"deny_groups", c.DenyGroups}} {
		seen := map[string]bool{}
		for i, g := range list.groups {
			if err := directory.ValidateGroupSpec(g); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", list.key, i, err))
			} else if k := strings.ToLower(g); seen[k] {
				errs = append(errs, fmt.Errorf("%s[%d]: %q is listed twice", list.key, i, g))
			} else {
				seen[k] = true
			}
		}
	}
	return errors.Join(errs...)
}
