package enroll

import (
	"fmt"
)

// The secrets a store holds, by how they are protected (Sealer):
//
// Sealed (AES-256-GCM under the key, opened with it):
//
//	Enrollment.TOTPSealed    "totp:"+Username   the authenticator app's secret
//	Activation.TOTPSealed    "totp:"+Username   the same, while it is set up
//	Activation.CodeSealed    "code:"+TokenHash  the code, to send it again
//	OutboundMessage.Sealed   "outbox"           the SMS text, or the call's words
//	QueuedMail.Sealed        "mail"             the subject, text and HTML
//
// Hashed (HMAC-SHA-256 keyed with the key's second half; the secret
// itself is never stored, so a hash cannot be recomputed for another key):
//
//	Activation.TokenHash     "token" or "phone-change": the activation link's or phone change's token
//	API token hash           "api-token": the API token's secret
//	Activation.CodeHash      "code": recomputed by a Resealer from CodeSealed
//
// Hashed without the key (SHA-256): the admin sessions' keys. Usernames,
// phone numbers, addresses and times are stored in clear.

// Resealer moves secrets from a store sealed with one key (From) to one
// sealed with another (To): each sealed field is opened with From and
// sealed again with To for the same purpose; a pending code's hash is
// recomputed with To from the code CodeSealed holds. Keyed hashes of
// secrets that are not stored (activation and phone-change tokens, API
// tokens) cannot be moved: they are copied as they are and counted in
// Stale, as they only match under From.
type Resealer struct {
	From, To *Sealer
	// Resealed counts the fields sealed again, Stale the keyed hashes
	// copied that only From matches.
	Resealed, Stale int
}

// NewResealer is the Resealer from one key to another.
func NewResealer(from, to *Sealer) *Resealer { return &Resealer{From: from, To: to} }

// Same reports whether both keys are one: nothing needs re-sealing.
func (r *Resealer) Same() bool { return r.From.Fingerprint() == r.To.Fingerprint() }

// reseal opens sealed with From and seals it with To, for purpose; what
// names the field in errors. Empty stays empty.
func (r *Resealer) reseal(sealed []byte, purpose, what string) ([]byte, error) {
	if sealed == nil || r.Same() {
		return sealed, nil
	}
	plain, err := r.From.Open(sealed, purpose)
	if err != nil {
		return nil, fmt.Errorf("%s does not open with the key of fingerprint %s (is it the key of this data?): %w",
			what, r.From.Fingerprint(), err)
	}
	r.Resealed++
	return r.To.Seal(plain, purpose), nil
}

// Enrollment re-seals e's authenticator secret.
func (r *Resealer) Enrollment(e *Enrollment) error {
	v, err := r.reseal(e.TOTPSealed, totpPurpose(e.Username), "the authenticator secret of enrollment "+e.Username)
	e.TOTPSealed = v
	return err
}

// Activation re-seals a's authenticator secret and code, and hashes the
// code again with To; its token hash is copied (Stale).
func (r *Resealer) Activation(a *Activation) error {
	var err error
	if a.TOTPSealed, err = r.reseal(a.TOTPSealed, totpPurpose(a.Username), "the authenticator secret of the activation of "+a.Username); err != nil {
		return err
	}
	if r.Same() {
		return nil
	}
	r.Stale++
	if a.CodeSealed == nil {
		return nil
	}
	code, err := r.From.Open(a.CodeSealed, codePurpose(a.TokenHash))
	if err != nil {
		return fmt.Errorf("the code of the activation of %s does not open with the key of fingerprint %s: %w", a.Username, r.From.Fingerprint(), err)
	}
	a.CodeSealed = r.To.Seal(code, codePurpose(a.TokenHash))
	if a.CodeHash != "" {
		a.CodeHash = r.To.Hash("code", string(code))
	}
	r.Resealed++
	return nil
}

// OutboundMessage re-seals m's body.
func (r *Resealer) OutboundMessage(m *OutboundMessage) error {
	v, err := r.reseal(m.Sealed, "outbox", fmt.Sprintf("the body of outbox message %d", m.ID))
	m.Sealed = v
	return err
}

// QueuedMail re-seals m's subject and body.
func (r *Resealer) QueuedMail(m *QueuedMail) error {
	v, err := r.reseal(m.Sealed, "mail", fmt.Sprintf("the body of queued mail %d", m.ID))
	m.Sealed = v
	return err
}

// APITokenHash counts an API token's hash, copied as it is.
func (r *Resealer) APITokenHash() {
	if !r.Same() {
		r.Stale++
	}
}
