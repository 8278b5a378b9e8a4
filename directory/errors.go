package directory

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"

	"github.com/go-ldap/ldap/v3"
)

// Sentinel errors. Callers test them with errors.Is; every error that leaves
// this package wraps exactly one of them, except ErrPartial, which also
// carries the kind of the follow-up change that failed.
var (
	ErrNotFound           = errors.New("directory: user not found")
	ErrAmbiguous          = errors.New("directory: more than one entry matches")
	ErrPolicy             = errors.New("directory: password rejected by policy")
	ErrUnavailable        = errors.New("directory: unavailable")
	ErrInsufficientRights = errors.New("directory: insufficient access rights")
	ErrTLS                = errors.New("directory: TLS failure")
	ErrInvalidCredentials = errors.New("directory: invalid credentials")
	// ErrServiceCredentials: the directory refused the service account's
	// password (bind_dn, bind_password); always with ErrUnavailable, never
	// with ErrInvalidCredentials (a user's).
	ErrServiceCredentials = errors.New("invalid credentials for bind_dn")
	ErrMustChange         = errors.New("directory: password must be changed")
	ErrLocked             = errors.New("directory: account locked")
	ErrDisabled           = errors.New("directory: account disabled")
	ErrAccountExpired     = errors.New("directory: account expired")
	ErrPasswordExpired    = errors.New("directory: password expired")

	// ErrInvalidInput: the caller's value cannot be used as asked (an empty
	// or unprintable query, a DN that is not one or lies outside base_dn).
	ErrInvalidInput = errors.New("directory: invalid input")
	// ErrTooMany: a list is larger than the gateway lists at once, or the
	// server's size limit for the service account cut it short.
	ErrTooMany = errors.New("directory: too many entries to list")
)

// PolicyError carries the server's reason for refusing a password.
type PolicyError struct {
	Reason string // the server's own text, e.g. "the password is too short"
}

func (e *PolicyError) Error() string { return "directory: password rejected by policy: " + e.Reason }

// Is makes errors.Is(err, ErrPolicy) true for a *PolicyError.
func (e *PolicyError) Is(target error) bool { return target == ErrPolicy }

// ErrPartial means the password was set but a follow-up change (a flag, an
// unlock) failed: the new password is in force and must reach the user.
var ErrPartial = errors.New("directory: password set, but a follow-up change failed")

// classify maps a go-ldap or network error to one of the sentinel errors.
// It is the one place where result codes become meaning; op names the
// operation for the message. The original error stays in the chain.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	kind := kindOf(err)
	if kind == nil {
		return fmt.Errorf("directory: %s: %w", op, err)
	}
	if errors.Is(kind, ErrPolicy) {
		return fmt.Errorf("%s: %w", op, &PolicyError{Reason: policyReason(err)})
	}
	return fmt.Errorf("%s: %w: %w", op, kind, err)
}

func kindOf(err error) error {
	if isTLSError(err) {
		return ErrTLS
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultServerDown,
			ldap.LDAPResultTimeout, ldap.LDAPResultConnectError, ldap.LDAPResultTimeLimitExceeded:
			return ErrUnavailable
		case ldap.LDAPResultInsufficientAccessRights:
			return ErrInsufficientRights
		case ldap.LDAPResultConstraintViolation:
			return ErrPolicy
		case ldap.LDAPResultNoSuchObject:
			return ErrNotFound
		case ldap.LDAPResultInvalidCredentials:
			return adBindKind(le)
		case ldap.LDAPResultConfidentialityRequired, ldap.LDAPResultStrongAuthRequired:
			return ErrTLS
		}
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return ErrUnavailable
	}
	// go-ldap reports a connection the server closed while a request was
	// outstanding as a plain error from its reader goroutine.
	if strings.HasPrefix(err.Error(), "unable to read LDAP response packet") {
		return ErrUnavailable
	}
	return nil
}

func isTLSError(err error) bool {
	var (
		unknownCA   x509.UnknownAuthorityError
		invalid     x509.CertificateInvalidError
		hostname    x509.HostnameError
		recordHdr   tls.RecordHeaderError
		verifyErr   *tls.CertificateVerificationError
		alert       tls.AlertError
		constraints x509.ConstraintViolationError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &invalid) || errors.As(err, &hostname) ||
		errors.As(err, &recordHdr) || errors.As(err, &verifyErr) || errors.As(err, &alert) ||
		errors.As(err, &constraints)
}

var adDataRe = regexp.MustCompile(`data ([0-9a-fA-F]+),`)

// adBindKind reads the Active Directory sub-code of an invalidCredentials
// result ("AcceptSecurityContext error, data 775, v1db1").
func adBindKind(le *ldap.Error) error {
	if le.Err != nil {
		if m := adDataRe.FindStringSubmatch(le.Err.Error()); m != nil {
			switch strings.ToLower(m[1]) {
			case "773":
				return ErrMustChange
			case "775":
				return ErrLocked
			case "532":
				return ErrPasswordExpired
			case "533":
				return ErrDisabled
			case "701":
				return ErrAccountExpired
			}
		}
	}
	return ErrInvalidCredentials
}

// policyReason extracts the human part of a constraint-violation message:
// Samba "0000052D: Constraint violation - check_password_restrictions: the
// password is too short. ..." becomes "the password is too short. ...".
func policyReason(err error) string {
	msg := err.Error()
	var le *ldap.Error
	if errors.As(err, &le) && le.Err != nil {
		msg = le.Err.Error()
	}
	if i := strings.LastIndex(msg, "check_password_restrictions: "); i >= 0 {
		msg = msg[i+len("check_password_restrictions: "):]
	}
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return "the directory refused the password"
	}
	return msg
}
