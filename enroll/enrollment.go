package enroll

import (
	"context"
	"errors"
	"time"
)

// State is the life-cycle state of an enrollment.
type State string

const (
	StatePending     State = "pending"     // activated, phone not yet verified
	StateActive      State = "active"      // phone verified; SMS commands accepted
	StateFrozen      State = "frozen"      // NOT ME or an admin froze it; commands refused
	StateDeactivated State = "deactivated" // an admin turned it off
)

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case StatePending, StateActive, StateFrozen, StateDeactivated:
		return true
	}
	return false
}

// Enrollment links a directory username to a verified phone number.
type Enrollment struct {
	Username  string    `json:"username"`
	Phone     string    `json:"phone"` // E.164, e.g. +15555550101; empty while pending
	Language  string    `json:"language"`
	State     State     `json:"state"`
	Method    string    `json:"method,omitempty"` // sms | voice | app | helpdesk
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// VerifiedAt is when the phone was verified (zero while pending).
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	// Mail is where notices go (from the directory at activation).
	Mail string `json:"mail,omitempty"`
	// TOTPSealed is the authenticator app's secret, sealed (Sealer), when
	// the user set the app up; LastTOTPStep is the last time step accepted,
	// so a code is never accepted twice.
	TOTPSealed   []byte `json:"totp_sealed,omitempty"`
	LastTOTPStep int64  `json:"last_totp_step,omitempty"`
}

// Activation is a pending enrollment: created when an admin activates a
// user, keyed by the hash of the single-use token mailed to the user, and
// carrying the phone verification in progress. It is deleted when the
// enrollment completes (the token is then used) or replaced when the user
// is activated again.
type Activation struct {
	TokenHash string `json:"token_hash"` // hex SHA-256 of the token; the token itself is never stored
	Username  string `json:"username"`
	Mail      string `json:"mail"`
	Language  string `json:"language"`
	// LanguageChosen: Language was chosen by the user (the pages' language
	// switch) or kept from an earlier enrollment, so it beats the browser's
	// Accept-Language; otherwise it is only the default.
	LanguageChosen bool      `json:"language_chosen,omitempty"`
	CreatedBy      string    `json:"created_by"`
	CreatedAt      time.Time `json:"created_at"`
	ExpiresAt      time.Time `json:"expires_at"`

	// Phone verification in progress (all zero until a number is entered).
	Phone        string    `json:"phone,omitempty"`         // E.164 being verified
	CodeHash     string    `json:"code_hash,omitempty"`     // hex HMAC-SHA-256 of the 6-digit code
	CodeSealed   []byte    `json:"code_sealed,omitempty"`   // the code sealed for "code:"+TokenHash, to send the same code again
	CodeMethod   string    `json:"code_method,omitempty"`   // sms | voice: how the code was last sent
	CodeExpires  time.Time `json:"code_expires,omitzero"`   // code_ttl after it was made
	CodeSentAt   time.Time `json:"code_sent_at,omitzero"`   // last send (SMS or call), for resend_after
	CodeAttempts int       `json:"code_attempts,omitempty"` // wrong tries on the current code
	LockedUntil  time.Time `json:"locked_until,omitzero"`   // refusal after too many wrong tries

	// Authenticator app set-up in progress: the TOTP secret, sealed.
	TOTPSealed   []byte `json:"totp_sealed,omitempty"`
	LastTOTPStep int64  `json:"last_totp_step,omitempty"` // a time step is accepted once
}

// Expired reports whether the activation can no longer be used at now.
func (a Activation) Expired(now time.Time) bool { return !now.Before(a.ExpiresAt) }

// Activation errors.
var (
	// ErrTokenUnknown: no activation has this token hash (never issued,
	// already used, or replaced by a newer activation).
	ErrTokenUnknown = errors.New("enroll: activation link unknown or already used")
	// ErrTokenExpired: the activation exists but has expired (or expired
	// and was purged).
	ErrTokenExpired = errors.New("enroll: activation link expired")
	// ErrTokenUsed: the link completed an enrollment that is still in
	// force (a *LinkUsedError says more). It also matches ErrTokenUnknown:
	// there is no activation behind the link any more.
	ErrTokenUsed = errors.New("enroll: activation link already used; the user is enrolled")
)

// LinkUsedError answers a link that was used to enroll, when the user is
// still enrolled: the page says so, and how to reset (text RESET to
// SMSNumber), instead of "unknown link". It matches ErrTokenUsed and
// ErrTokenUnknown.
type LinkUsedError struct {
	Language  string // the enrollment's language
	SMSNumber string // the number to text; "" when not configured
}

func (e *LinkUsedError) Error() string { return ErrTokenUsed.Error() }
func (e *LinkUsedError) Is(target error) bool {
	return target == ErrTokenUsed || target == ErrTokenUnknown
}

// ActivationStore keeps the activation links.
type ActivationStore interface {
	// PutActivation stores a, replacing any other activation of the same
	// username (its token stops working) in the same transaction.
	PutActivation(ctx context.Context, a Activation) error
	// ActivationByToken returns the activation whose TokenHash is hash
	// (ErrTokenUnknown when none).
	ActivationByToken(ctx context.Context, hash string) (Activation, error)
	// ActivationByUser returns the username's current activation.
	ActivationByUser(ctx context.Context, username string) (Activation, error)
	// UpdateActivation reads the activation, lets fn change it and writes it
	// back in one transaction; fn returning an error changes nothing (and the
	// error is returned). fn must not change TokenHash or Username.
	UpdateActivation(ctx context.Context, hash string, fn func(*Activation) error) error
	// CompleteActivation stores e (with its phone index) and deletes the
	// activation in one transaction, so the token works once. ErrPhoneTaken
	// (another username owns e.Phone) changes nothing.
	CompleteActivation(ctx context.Context, hash string, e Enrollment) error
	// DeleteActivation removes the activation (ErrTokenUnknown when none).
	DeleteActivation(ctx context.Context, hash string) error
	// PurgeActivations removes activations expired before now, recording
	// each as an EndedLink (LinkExpired), and forgets ended links older
	// than EndedLinkRetention.
	PurgeActivations(ctx context.Context, now time.Time) (int, error)
	// Activations lists every stored activation (expired ones included),
	// ordered by username, case-insensitively: the console's invited users.
	Activations(ctx context.Context) ([]Activation, error)
}

// EndedLinkStore remembers the links that no longer work, for their page.
type EndedLinkStore interface {
	// EndedLink returns what became of the link whose activation was
	// stored under hash: CompleteActivation records it as used, and
	// PurgeActivations as expired. ErrTokenUnknown when nothing is known.
	EndedLink(ctx context.Context, hash string) (EndedLink, error)
}

// EndedLink remembers an activation link that no longer works, so that
// reopening it (Back after enrolling, an old email) gets a page that says
// what happened instead of "unknown link". It holds only the token's hash:
// the link cannot be used again from it.
type EndedLink struct {
	TokenHash string    `json:"token_hash"`
	Username  string    `json:"username"`
	Reason    LinkEnd   `json:"reason"`
	At        time.Time `json:"at"` // when it was used, or when it expired
}

// LinkEnd is why a link stopped working.
type LinkEnd string

const (
	LinkUsed    LinkEnd = "used"    // the enrollment completed with it
	LinkExpired LinkEnd = "expired" // activation_ttl passed
)

// EndedLinkRetention is how long an ended link is remembered.
const EndedLinkRetention = 30 * 24 * time.Hour
