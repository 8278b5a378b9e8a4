package ldaplab

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// BindError is what BindErr returns when a bind fails, or succeeds with a
// password-policy error (OpenLDAP binds while pwdReset=TRUE succeed but
// report "Password must be changed").
type BindError struct {
	ResultCode uint16 // LDAP result code; 0 when the bind itself succeeded
	Message    string // the server's diagnostic message
	// ADCode is AD's "data" sub-code of a 49: 52e bad password, 773 must
	// change, 775 locked, 533 disabled, 532 expired, 701 account expired.
	ADCode string
	// PPolicyError is the Behera password-policy control's error (OpenLDAP):
	// -1 none, 1 accountLocked, 2 changeAfterReset, ...; PPolicyText is its
	// text, such as "Account locked" or "Password must be changed".
	PPolicyError int
	PPolicyText  string
	Err          error // the go-ldap error, nil when the bind succeeded
}

func (e *BindError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ldap bind: result %d (%s)", e.ResultCode, ldap.LDAPResultCodeMap[e.ResultCode])
	if e.ADCode != "" {
		fmt.Fprintf(&b, ", AD data %s", e.ADCode)
	}
	if e.PPolicyText != "" {
		fmt.Fprintf(&b, ", ppolicy: %s", e.PPolicyText)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

func (e *BindError) Unwrap() error { return e.Err }

// Outcome names what the server said, the same way for AD and OpenLDAP:
// "must-change" (AD data 773, ppolicy changeAfterReset), "locked" (775,
// ppolicy accountLocked), "invalid" (49 with 52e or no sub-code: a wrong
// password) or "other".
func (e *BindError) Outcome() string {
	switch {
	case e.ADCode == "773" || e.PPolicyError == 2:
		return "must-change"
	case e.ADCode == "775" || e.PPolicyError == 1:
		return "locked"
	case e.ResultCode == 49 && (e.ADCode == "" || e.ADCode == "52e"):
		return "invalid"
	}
	return "other"
}

var adDataCode = regexp.MustCompile(`data ([0-9a-fA-F]+),`)

// BindErr binds as dn over verified LDAPS and returns nil on a clean
// success, a *BindError when the server refuses the bind or its password
// policy reports an error (on OpenLDAP the bind carries the Behera ppolicy
// control), or another error when the server could not be reached.
func (s *Server) BindErr(dn, password string) error {
	c, err := s.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	req := ldap.NewSimpleBindRequest(dn, password, nil)
	if s.Dialect == DialectOpenLDAP {
		req.Controls = []ldap.Control{ldap.NewControlBeheraPasswordPolicy()}
	}
	res, err := c.SimpleBind(req)
	be := &BindError{PPolicyError: -1, Err: err}
	var le *ldap.Error
	switch {
	case errors.As(err, &le):
		be.ResultCode = le.ResultCode
		if le.Err != nil {
			be.Message = le.Err.Error()
		}
		if m := adDataCode.FindStringSubmatch(be.Message); m != nil {
			be.ADCode = strings.ToLower(m[1])
		}
	case err != nil:
		return err
	}
	if res != nil {
		if pp, ok := ldap.FindControl(res.Controls, ldap.ControlTypeBeheraPasswordPolicy).(*ldap.ControlBeheraPasswordPolicy); ok && pp.Error >= 0 {
			be.PPolicyError, be.PPolicyText = int(pp.Error), pp.ErrorString
		}
	}
	if err == nil && be.PPolicyError < 0 {
		return nil
	}
	return be
}

// Locked reports whether the account at dn is locked right now: AD's
// computed msDS-User-Account-Control-Computed has UF_LOCKOUT (0x10);
// OpenLDAP's entry has pwdAccountLockedTime.
func (s *Server) Locked(t testing.TB, dn string) bool {
	t.Helper()
	attr := "pwdAccountLockedTime"
	if s.Dialect == DialectAD {
		attr = "msDS-User-Account-Control-Computed"
	}
	c, err := s.bound(s.AdminDN, s.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
		"(objectClass=*)", []string{attr}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("ldaplab: read %s of %s: %v", attr, dn, err)
	}
	v := res.Entries[0].GetAttributeValue(attr)
	if s.Dialect != DialectAD {
		return v != ""
	}
	flags, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("ldaplab: %s of %s is %q: %v", attr, dn, v, err)
	}
	return flags&0x10 != 0
}

// LockOut makes LockoutThreshold binds with a wrong password as dn, then
// fails the test unless the account is locked.
func (s *Server) LockOut(t testing.TB, dn string) {
	t.Helper()
	c, err := s.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wrong := "Wrong#" + UniqueName("pw")
	for i := 0; i < LockoutThreshold; i++ {
		err := c.Bind(dn, wrong)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Fatalf("ldaplab: bad bind %d as %s: want result 49, got %v", i+1, dn, err)
		}
	}
	if !s.Locked(t, dn) {
		t.Fatalf("ldaplab: %s is not locked after %d bad binds", dn, LockoutThreshold)
	}
}
