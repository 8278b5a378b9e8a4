package enroll

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/gateway/notify"
)

// UserFinder is what enrollment needs from the directory.
type UserFinder interface {
	FindUser(ctx context.Context, username string) (directory.User, error)
}

// Catalog renders localised SMS texts.
type Catalog interface {
	Text(lang, key string, args map[string]string) string
}

// ServiceStore is the storage the enrollment journey and the admin
// operations need.
type ServiceStore interface {
	EnrollmentStore
	AuditStore
	OptOutStore
	ActivationStore
	EndedLinkStore
	OutboxStore
	TokenStore
}

// MessageQueue is the outbox as the Service sees it (outbox.Queue, the one
// path every SMS and call takes into the outbox): Enqueue stores m with
// body sealed and wakes the sender.
type MessageQueue interface {
	Enqueue(ctx context.Context, m OutboundMessage, body string) (uint64, error)
}

// ServiceDeps wires a Service. Only cmd builds it.
type ServiceDeps struct {
	Store     ServiceStore
	Directory UserFinder
	Mailer    notify.Mailer // nil: mail off (activation then fails clearly)
	Mails     notify.MailRenderer
	Messages  Catalog
	Sealer    *Sealer
	// Outbox queues the codes and notices texted or called; without it
	// none can be sent.
	Outbox MessageQueue
	Log    *slog.Logger
	Now    func() time.Time // default time.Now
	// Unlocker clears lockouts for UnlockUser; default: Directory, when it
	// has an Unlock method (directory.Client does).
	Unlocker DirectoryUnlocker
	// LineChecker, when set (sms.lookup.line_type), refuses landline and
	// VoIP numbers for SMS before a number is enrolled (phone.go).
	LineChecker LineChecker
	// Authenticator checks the directory password for the self-service
	// phone change; default: Directory, when it has an Authenticate
	// method (directory.Client does).
	Authenticator Authenticator
	// TokenOwners checks the owners of API tokens on creation and on every
	// use; default: Directory, when it has an IsAdmin method
	// (directory.Client does). Without one, no token can be made or used.
	TokenOwners TokenOwnerDirectory
	// SelfService decides who may use self-service, asked at each act
	// (selfservice.go); default: Directory, when it has a
	// CheckSelfService method (directory.Client does). Without one every
	// act is refused.
	SelfService directory.SelfServiceChecker
}

// ServiceSettings are the enrollment knobs from the configuration.
type ServiceSettings struct {
	Config                    // enrollment: activation_ttl, code_ttl, resend_after, max_attempts, methods
	PublicURL        string   // links in emails: PublicURL + "/enroll/" + token
	DefaultLanguage  string   // en | fr
	DefaultRegion    string   // for numbers typed without a country code
	AllowedCountries []string // ISO codes; empty = all
	Issuer           string   // shown in authenticator apps (default "ReplyReset")
	LockoutFor       time.Duration
	Helpdesk         string         // how to reach IT, named in emails (e.g. the mail.from address)
	Location         *time.Location // time zone of dates in emails (default the server's)
	// SMSNumber is the company number users text (sms.twilio.from): the
	// page names it when a number that replied STOP must text START to it.
	// Optional; without it the page says to reply START to our messages.
	SMSNumber string
}

func (s ServiceSettings) location() *time.Location {
	if s.Location == nil {
		return time.Local
	}
	return s.Location
}

// Step is where the user is in the enrollment journey.
type Step string

const (
	StepPhone  Step = "phone"  // enter the mobile number
	StepVerify Step = "verify" // a code was sent: type it, call me, or use the app
	StepDone   Step = "done"   // enrolled (shown once, right after success)
)

// Page is what the enrollment site shows for a token.
type Page struct {
	Username    string
	DisplayName string
	Language    string
	// LanguageChosen: Language is the user's (chosen on the pages or kept
	// from an earlier enrollment), not a default the browser may override.
	LanguageChosen bool
	Step           Step
	Phone          string   // E.164 being verified (StepVerify) or enrolled (StepDone)
	PrefillPhone   string   // from the directory's mobile attribute, for StepPhone
	Methods        []string // allowed methods: sms, voice, app
	ResendAt       time.Time
	CodeExpires    time.Time
	AttemptsLeft   int
	LockedUntil    time.Time
	ExpiresAt      time.Time // the activation link's expiry
	// Delivery is what became of the newest code message to Phone (set by
	// Open, StepVerify only): pending, sent, delivered, or failed and why.
	Delivery DeliveryState
}

// AppSetup is what the page needs to show an authenticator QR code.
type AppSetup struct {
	URI    string // otpauth://totp/...
	Secret string // base32, for typing in by hand
	QRPNG  []byte // the URI as a QR code
}

// ActivationResult tells the admin what was sent.
type ActivationResult struct {
	Username  string
	Mail      string
	ExpiresAt time.Time
}

// Errors the enrollment site shows to the user, each with its own message.
var (
	ErrNoMail            = errors.New("enroll: the user has no mail address in the directory")
	ErrMailOff           = errors.New("enroll: mail is not configured, so no activation email can be sent")
	ErrCountryNotAllowed = errors.New("enroll: numbers from this country are not accepted")
	ErrCodeWrong         = errors.New("enroll: the code is wrong")
	ErrCodeExpired       = errors.New("enroll: the code has expired; send a new one")
	ErrNoCode            = errors.New("enroll: no code was sent yet")
	ErrMethodOff         = errors.New("enroll: this verification method is turned off")
)

// ErrCodeReplayed: the authenticator code just accepted, posted again (a
// double tap). Each time step is accepted once, so it is refused, but it
// is no wrong try. It matches ErrCodeWrong.
var ErrCodeReplayed error = replayedError{}

type replayedError struct{}

func (replayedError) Error() string        { return "enroll: this authenticator code was just used" }
func (replayedError) Is(target error) bool { return target == ErrCodeWrong }

// ResendError: a code may not be sent again before At.
type ResendError struct{ At time.Time }

func (e *ResendError) Error() string {
	return fmt.Sprintf("enroll: a new send is possible at %s", e.At.Format(time.RFC3339))
}

// LockedError: too many wrong codes; refused until Until.
type LockedError struct{ Until time.Time }

func (e *LockedError) Error() string {
	return fmt.Sprintf("enroll: too many wrong codes; try again after %s", e.Until.Format(time.RFC3339))
}

// WrongCodeError: the code was wrong; AttemptsLeft more tries remain. It
// matches ErrCodeWrong.
type WrongCodeError struct{ AttemptsLeft int }

func (e *WrongCodeError) Error() string {
	return fmt.Sprintf("enroll: the code is wrong (%d tries left)", e.AttemptsLeft)
}
func (e *WrongCodeError) Is(target error) bool { return target == ErrCodeWrong }

// Service runs the enrollment journey: activation, phone entry, code by
// SMS or voice call, or authenticator app, and completion.
type Service struct {
	deps ServiceDeps
	set  ServiceSettings
}

// NewService returns a Service; it validates nothing the config loader
// has not validated already.
func NewService(deps ServiceDeps, set ServiceSettings) *Service {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if set.Issuer == "" {
		set.Issuer = "ReplyReset"
	}
	if set.LockoutFor <= 0 {
		set.LockoutFor = 10 * time.Minute
	}
	return &Service{deps: deps, set: set}
}

// The methods below are the contract the web pages and the CLI code
// against; service_*.go implement them.
//
//	Activate(ctx, username, actor string) (ActivationResult, error)
//	    Looks the user up (directory.ErrNotFound → clear error, nothing stored;
//	    no mail → ErrNoMail), makes a 32-byte token, stores its hash with
//	    activation_ttl, replacing any older activation, mails the link
//	    PublicURL/enroll/<token> (text + HTML, user's language), audits.
//	    If the mail cannot be sent the activation is removed again.
//	Open(ctx, token string) (Page, error)
//	    ErrTokenUnknown / ErrTokenExpired, else the page state.
//	SetLanguage(ctx, token, lang string) (Page, error)
//	    The user's choice (the language switch): it holds from now on.
//	BrowserLanguage(ctx, token, lang string) (Page, error)
//	    The browser's language, taken only while the user chose none.
//	SendCode(ctx, token, rawPhone, method string) (Page, error)
//	    method "sms" or "voice". Normalises the phone (PhoneError),
//	    checks allowed countries (ErrCountryNotAllowed) and that no other
//	    user's enrollment owns it (ErrPhoneTaken), makes a 6-digit code
//	    (crypto/rand, stored as Sealer.Hash("code", ...), code_ttl) and
//	    queues it (SMS text sms.code, or a call reading the digits).
//	Resend(ctx, token, method string) (Page, error)
//	    The same code again, once resend_after has passed (*ResendError).
//	VerifyCode(ctx, token, code string) (Page, error)
//	    *WrongCodeError, ErrCodeExpired, ErrNoCode, *LockedError (after
//	    max_attempts wrong tries the code dies and LockoutFor refusal
//	    starts); on success the enrollment completes.
//	StartApp(ctx, token, rawPhone string) (AppSetup, error)
//	    Checks the phone like SendCode, makes (or reuses) a TOTP secret
//	    (sealed in the activation) and returns the otpauth URI and QR PNG.
//	VerifyApp(ctx, token, code string) (Page, error)
//	    Checks a TOTP code (±1 step, each step once); on success completes
//	    the enrollment with the app secret.
//
// Completion: enrollment active with phone, language, mail and method,
// activation deleted (CompleteActivation), confirmation SMS sms.enrolled
// queued, "enrolled" email sent when mail is on, audit event "enroll".

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
