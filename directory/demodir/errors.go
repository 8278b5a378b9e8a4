package demodir

import (
	"fmt"
	"strings"

	"github.com/jimlambrt/gldap"
)

// ldapError is an LDAP result other than success, with the diagnostic
// message Active Directory (or Samba, for password policy) would send.
type ldapError struct {
	code    int
	msg     string
	matched string // matchedDN for noSuchObject
}

func (e *ldapError) Error() string {
	return fmt.Sprintf("LDAP result %d (%s): %s", e.code, gldap.ResultCodeMap[uint16(e.code)], strings.TrimRight(e.msg, "\x00\n"))
}

// Bind sub-codes: the "data" part of AD's invalidCredentials diagnostic.
const (
	dataInvalid        = "52e"
	dataLocked         = "775"
	dataMustChange     = "773"
	dataDisabled       = "533"
	dataPasswordExpire = "532"
	dataAccountExpired = "701"
)

// bindFailure is AD's invalidCredentials (49) with the given sub-code.
func bindFailure(data string) *ldapError {
	return &ldapError{code: gldap.ResultInvalidCredentials,
		msg: "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data " + data + ", v3839\x00"}
}

func errNoSuchObject(matched string) *ldapError {
	return &ldapError{code: gldap.ResultNoSuchObject, matched: matched,
		msg: "0000208D: NameErr: DSID-03100288, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'" + matched + "'\n\x00"}
}

func errInsufficientRights() *ldapError {
	return &ldapError{code: gldap.ResultInsufficientAccessRights,
		msg: "00002098: SecErr: DSID-03150F94, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0\n\x00"}
}

func errNotBound() *ldapError {
	return &ldapError{code: gldap.ResultOperationsError,
		msg: "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v3839\x00"}
}

func errStrongAuth() *ldapError {
	return &ldapError{code: gldap.ResultStrongAuthRequired,
		msg: "00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking if SSL\\TLS are not already active on the connection, data 0, v3839\x00"}
}

func errWillNotPerform(detail string) *ldapError {
	return &ldapError{code: gldap.ResultUnwillingToPerform,
		msg: "0000001F: SvcErr: DSID-031A126C, problem 5003 (WILL_NOT_PERFORM), data 0 (" + detail + ")\n\x00"}
}

func errAttrConversion() *ldapError {
	return &ldapError{code: gldap.ResultConstraintViolation,
		msg: "00000057: LdapErr: DSID-0C090D11, comment: Error in attribute conversion operation, data 0, v3839\x00"}
}

func errConstraint(attr string) *ldapError {
	return &ldapError{code: gldap.ResultConstraintViolation,
		msg: "000021C8: AtrErr: DSID-03200BBA, #1:\n\t0: 000021C8: DSID-03200BBA, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 0 (" + attr + ")\n\x00"}
}

// errPasswordPolicy is Samba's refusal of a password, which the product's
// error mapping reads after "check_password_restrictions: ".
func errPasswordPolicy(reason string) *ldapError {
	return &ldapError{code: gldap.ResultConstraintViolation,
		msg: "0000052D: Constraint violation - check_password_restrictions: " + reason}
}

func errWrongOldPassword() *ldapError {
	return &ldapError{code: gldap.ResultConstraintViolation,
		msg: "00000056: Constraint violation - The old password specified doesn't match!"}
}

func errEntryExists() *ldapError {
	return &ldapError{code: gldap.ResultEntryAlreadyExists,
		msg: "00000524: UpdErr: DSID-031A11E2, problem 6005 (ENTRY_EXISTS), data 0\n\x00"}
}

func errValueExists(attr string) *ldapError {
	return &ldapError{code: gldap.ResultAttributeOrValueExists,
		msg: "00002083: AtrErr: DSID-03151904, #1:\n\t0: 00002083: DSID-03151904, problem 1006 (ATT_OR_VALUE_EXISTS), data 0, Att 0 (" + attr + ")\n\x00"}
}

func errNoSuchAttribute(attr string) *ldapError {
	return &ldapError{code: gldap.ResultNoSuchAttribute,
		msg: "00002085: AtrErr: DSID-03152A67, #1:\n\t0: 00002085: DSID-03152A67, problem 1001 (NO_ATTRIBUTE_OR_VAL), data 0, Att 0 (" + attr + ")\n\x00"}
}

func errNotLeaf() *ldapError {
	return &ldapError{code: gldap.ResultNotAllowedOnNonLeaf,
		msg: "00002015: UpdErr: DSID-031B0D7A, problem 6003 (CANT_ON_NON_LEAF), data 0\n\x00"}
}

func errNotOnRDN(attr string) *ldapError {
	return &ldapError{code: gldap.ResultNotAllowedOnRDN,
		msg: "000020B1: UpdErr: DSID-030F17F9, problem 6004 (CANT_ON_RDN), data 0 (" + attr + ")\n\x00"}
}

func errInvalidDN(dn string) *ldapError {
	return &ldapError{code: gldap.ResultInvalidDNSyntax,
		msg: "00002081: NameErr: DSID-03050F42, problem 2003 (BAD_ATT_SYNTAX), data 0, best match of:\n\t'" + dn + "'\n\x00"}
}

func errObjectClass(detail string) *ldapError {
	return &ldapError{code: gldap.ResultObjectClassViolation,
		msg: "00002014: objectclass_attrs: " + detail + "\n\x00"}
}

func errUnavailableCritical(oid string) *ldapError {
	return &ldapError{code: gldap.ResultUnavailableCriticalExtension,
		msg: "00000057: LdapErr: DSID-0C090A22, comment: Error processing control " + oid + ", data 0, v3839\x00"}
}

func errFilter(err error) *ldapError {
	return &ldapError{code: gldap.ResultProtocolError,
		msg: "00000057: LdapErr: DSID-0C0C0D58, comment: Error processing filter (" + err.Error() + "), data 0, v3839\x00"}
}

func errInappropriateMatching(rule string) *ldapError {
	return &ldapError{code: gldap.ResultInappropriateMatching,
		msg: "00000057: LdapErr: DSID-0C0C0D58, comment: unknown matching rule " + rule + ", data 0, v3839\x00"}
}
