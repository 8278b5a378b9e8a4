package record

import (
	"bytes"
	"strings"

	"github.com/replyreset/replyreset/enroll"
)

// The Update functions are the read-modify-write rules of the contract's
// Update methods: fn changes a copy of the stored record (its sealed bytes
// cloned, so that a transaction fn runs again starts from the stored
// state), and the result must keep its identity and be valid. A backend
// reads old, calls one and writes what it returns, all in one transaction.

// UpdateMessage is OutboxStore.UpdateMessage's rule for message old.
func UpdateMessage(old enroll.OutboundMessage, fn func(*enroll.OutboundMessage) error) (enroll.OutboundMessage, error) {
	m := old
	m.Sealed = bytes.Clone(old.Sealed)
	if err := fn(&m); err != nil {
		return m, err
	}
	if m.ID != old.ID {
		return m, enroll.Invalidf("update message %d: the ID cannot change", old.ID)
	}
	return m, enroll.CheckMessage(m)
}

// UpdateMail is MailQueueStore.UpdateMail's rule for mail old.
func UpdateMail(old enroll.QueuedMail, fn func(*enroll.QueuedMail) error) (enroll.QueuedMail, error) {
	m := old
	m.Sealed = bytes.Clone(old.Sealed)
	if err := fn(&m); err != nil {
		return m, err
	}
	if m.ID != old.ID {
		return m, enroll.Invalidf("update mail %d: the ID cannot change", old.ID)
	}
	return m, enroll.CheckQueuedMail(m)
}

// UpdateActivation is ActivationStore.UpdateActivation's rule for the
// stored activation a (decoded afresh by the caller).
func UpdateActivation(a enroll.Activation, fn func(*enroll.Activation) error) (enroll.Activation, error) {
	tokenHash, username := a.TokenHash, a.Username
	if err := fn(&a); err != nil {
		return a, err
	}
	if a.TokenHash != tokenHash || a.Username != username {
		return a, enroll.Invalidf("update activation of %s: token hash and username cannot change", username)
	}
	_, err := enroll.CheckActivation(a)
	return a, err
}

// UsedLink is CompleteActivation's rule: e (whose lower-cased username is
// ekey) must be for activation a's user, and the link of hash is recorded
// as used when e was last updated (or verified).
func UsedLink(hash string, a enroll.Activation, ekey string, e enroll.Enrollment) (enroll.EndedLink, error) {
	if strings.ToLower(a.Username) != ekey {
		return enroll.EndedLink{}, enroll.Invalidf("enrollment %s does not match the activation's user", e.Username)
	}
	at := e.UpdatedAt
	if at.IsZero() {
		at = e.VerifiedAt
	}
	return enroll.EndedLink{TokenHash: hash, Username: a.Username, Reason: enroll.LinkUsed, At: at}, nil
}
