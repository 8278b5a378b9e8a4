package demodir

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// passwordHash keeps a password as a salted SHA-256: the demo's memory
// never holds a password in clear.
type passwordHash struct {
	salt [16]byte
	sum  [32]byte
}

func hashPassword(pw string) *passwordHash {
	h := &passwordHash{}
	_, _ = rand.Read(h.salt[:])
	h.sum = sha256.Sum256(append(h.salt[:], pw...))
	return h
}

func (h *passwordHash) matches(pw string) bool {
	if h == nil {
		return false
	}
	sum := sha256.Sum256(append(h.salt[:], pw...))
	return subtle.ConstantTimeCompare(sum[:], h.sum[:]) == 1
}

// decodeUnicodePwd reads a unicodePwd value: the password in double
// quotes, UTF-16LE.
func decodeUnicodePwd(v string) (string, bool) {
	b := []byte(v)
	if len(b) < 4 || len(b)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	s := string(utf16.Decode(u))
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' || !utf8.ValidString(s) {
		return "", false
	}
	return s[1 : len(s)-1], true
}

// policy is the domain's password and lockout policy, read from the domain
// object's attributes (so that an administrator can change it over LDAP, as
// on AD).
type policy struct {
	threshold     int64         // lockoutThreshold; 0: never lock
	duration      time.Duration // lockoutDuration
	forever       bool          // locked until an administrator unlocks
	window        time.Duration // lockOutObservationWindow
	minLength     int
	complexity    bool
	maxAge        time.Duration
	maxAgeEnabled bool
}

func (s *store) policy() policy {
	d := s.domain()
	p := policy{threshold: d.int("lockoutThreshold"), minLength: int(d.int("minPwdLength")),
		complexity: d.int("pwdProperties")&1 != 0}
	var ok bool
	p.duration, ok = ticksDuration(d.int("lockoutDuration"))
	p.forever = !ok
	p.window, _ = ticksDuration(d.int("lockOutObservationWindow"))
	p.maxAge, p.maxAgeEnabled = ticksDuration(d.int("maxPwdAge"))
	return p
}

// lockedAt reports whether e is locked at now, and since when.
func (p policy) locked(e *entry, now time.Time) (bool, time.Time) {
	t := fromFileTime(e.int("lockoutTime"))
	if t.IsZero() {
		return false, time.Time{}
	}
	if !p.forever && !now.Before(t.Add(p.duration)) {
		return false, t
	}
	return true, t
}

// passwordExpired reports the age-based expiry of e's password.
func (p policy) passwordExpired(e *entry, now time.Time) bool {
	last := e.int("pwdLastSet")
	if !p.maxAgeEnabled || last <= 0 || e.int("userAccountControl")&ufDontExpirePasswd != 0 {
		return false
	}
	return !now.Before(fromFileTime(last).Add(p.maxAge))
}

// computedFlags is msDS-User-Account-Control-Computed.
func (s *store) computedFlags(e *entry, now time.Time) int64 {
	p := s.policy()
	var f int64
	if locked, _ := p.locked(e, now); locked {
		f |= ufLockout
	}
	if e.pw != nil && (e.int("pwdLastSet") == 0 || p.passwordExpired(e, now)) &&
		e.int("userAccountControl")&ufDontExpirePasswd == 0 {
		f |= ufPasswordExpired
	}
	return f
}

// checkPassword applies the domain policy to a new password for e, with
// Samba's wording.
func (s *store) checkPassword(e *entry, pw string) *ldapError {
	p := s.policy()
	if n := utf8.RuneCountInString(pw); n < p.minLength {
		return errPasswordPolicy(fmt.Sprintf("the password is too short. It should be equal or longer than %d characters!", p.minLength))
	}
	if n := utf8.RuneCountInString(pw); n > 256 {
		return errPasswordPolicy("the password is too long. It should be equal or shorter than 256 characters!")
	}
	if p.complexity && !complexEnough(pw, e.first("sAMAccountName")) {
		return errPasswordPolicy("the password does not meet the complexity criteria!")
	}
	return nil
}

// complexEnough is Windows' "passwords must meet complexity requirements":
// three of upper case, lower case, digits, other characters (non-ASCII
// letters without case count as a fifth class), and not the account name
// (compared without case, for names of three characters or more).
func complexEnough(pw, account string) bool {
	if len(account) >= 3 && strings.Contains(strings.ToLower(pw), strings.ToLower(account)) {
		return false
	}
	var upper, lower, digit, special, other bool
	for _, r := range pw {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		case unicode.IsLetter(r):
			other = true
		default:
			special = true
		}
	}
	n := 0
	for _, b := range []bool{upper, lower, digit, special, other} {
		if b {
			n++
		}
	}
	return n >= 3
}

// setPassword gives e a new password (already checked).
func setPassword(e *entry, pw string, now time.Time) {
	e.pw, e.pwSet = hashPassword(pw), now
	e.setInt("pwdLastSet", fileTime(now))
}

// resolveAccount finds the account a bind name designates: a DN, a
// userPrincipalName, a sAMAccountName or DOMAIN\sAMAccountName.
func (s *store) resolveAccount(name string) *entry {
	if strings.Contains(name, "=") {
		if rdns, err := parseDN(name); err == nil {
			if e := s.entries[strings.Join(rdns, ",")]; e != nil && e.kind == kindUser {
				return e
			}
		}
		return nil
	}
	attr, value := "sAMAccountName", name
	if dom, user, ok := strings.Cut(name, `\`); ok {
		if !strings.EqualFold(dom, s.netbios) && !strings.EqualFold(dom, s.realm) {
			return nil
		}
		value = user
	} else if strings.Contains(name, "@") {
		attr = "userPrincipalName"
	}
	if e := s.entries[s.names[nameKey(attr, value)]]; e != nil && e.kind == kindUser {
		return e
	}
	return nil
}

// bind checks a simple bind with a non-empty password, AD style, and
// keeps badPwdCount, lockoutTime and the logon attributes.
func (s *store) bind(name, pw string) (*entry, *ldapError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.resolveAccount(name)
	if e == nil {
		return nil, bindFailure(dataInvalid)
	}
	now := s.clock.Now()
	p := s.policy()
	exempt := e.key == s.adminKey // AD never locks the built-in Administrator
	locked, lockedAt := p.locked(e, now)
	if locked && !exempt {
		return nil, bindFailure(dataLocked)
	}
	if !e.pw.matches(pw) {
		s.badPassword(e, p, now, !lockedAt.IsZero(), exempt)
		return nil, bindFailure(dataInvalid)
	}
	// The password is right: the failure count starts again.
	e.setInt("badPwdCount", 0)
	uac := e.int("userAccountControl")
	switch exp := e.int("accountExpires"); {
	case uac&ufAccountDisable != 0:
		return nil, bindFailure(dataDisabled)
	case exp > 0 && exp != neverExpires && !now.Before(fromFileTime(exp)):
		return nil, bindFailure(dataAccountExpired)
	case e.int("pwdLastSet") == 0 && uac&ufDontExpirePasswd == 0:
		return nil, bindFailure(dataMustChange)
	case p.passwordExpired(e, now):
		return nil, bindFailure(dataPasswordExpire)
	}
	if !lockedAt.IsZero() {
		// A good logon after the lockout expired clears the stale lock time
		// (a replicated change).
		e.setInt("lockoutTime", 0)
		s.stamp(e, now)
	}
	e.setInt("lastLogon", fileTime(now))
	e.setInt("logonCount", e.int("logonCount")+1)
	return e, nil
}

// badPassword counts a failed logon; at the threshold the account locks.
// badPwdCount and badPasswordTime are not replicated (no new USN); the
// lockout is.
func (s *store) badPassword(e *entry, p policy, now time.Time, staleLock, exempt bool) {
	n := e.int("badPwdCount")
	last := fromFileTime(e.int("badPasswordTime"))
	if staleLock || (p.window > 0 && !last.IsZero() && !now.Before(last.Add(p.window))) {
		n = 0
	}
	n++
	e.setInt("badPwdCount", n)
	e.setInt("badPasswordTime", fileTime(now))
	if p.threshold > 0 && n >= p.threshold && !exempt {
		e.setInt("lockoutTime", fileTime(now))
		s.stamp(e, now)
		s.log.Info("demo directory: account locked out", "dn", e.dn, "bad_password_count", n)
	}
}
