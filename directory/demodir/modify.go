package demodir

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jimlambrt/gldap"
)

// change is one modification of a modify request.
type change struct {
	op   int64 // gldap.AddAttribute, DeleteAttribute, ReplaceAttribute
	attr string
	vals []string
}

// modify applies changes to the entry at dn, all or nothing.
func (s *store) modify(p principal, dn string, changes []change, permissive bool) *ldapError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.key == "" {
		return errNotBound()
	}
	cur, matched, lerr := s.lookup(dn)
	if lerr != nil {
		return lerr
	}
	if cur == nil {
		return errNoSuchObject(matched)
	}
	now := s.clock.Now()
	e := cur.clone()
	replicated := false
	var newPassword *string
	var explicitPwdLastSet *int64
	unlock := false

	// unicodePwd: a replace is a reset (Reset Password right); a delete of
	// the old value with an add of the new one is a user's change (anyone
	// who knows the old password).
	var pwdOps []change
	changes = slices.DeleteFunc(slices.Clone(changes), func(c change) bool {
		if strings.EqualFold(c.attr, "unicodePwd") {
			pwdOps = append(pwdOps, c)
			return true
		}
		return false
	})
	if len(pwdOps) > 0 {
		if e.kind != kindUser {
			return errObjectClass("unicodePwd is not allowed on this class")
		}
		if !p.tls {
			return errWillNotPerform("unicodePwd needs an encrypted connection")
		}
		switch {
		case len(pwdOps) == 1 && pwdOps[0].op == gldap.ReplaceAttribute && len(pwdOps[0].vals) == 1:
			if !s.canReset(p, e) {
				return errInsufficientRights()
			}
			pw, ok := decodeUnicodePwd(pwdOps[0].vals[0])
			if !ok {
				return errAttrConversion()
			}
			newPassword = &pw
		case len(pwdOps) == 2 && pwdOps[0].op == gldap.DeleteAttribute && pwdOps[1].op == gldap.AddAttribute &&
			len(pwdOps[0].vals) == 1 && len(pwdOps[1].vals) == 1:
			oldPw, ok1 := decodeUnicodePwd(pwdOps[0].vals[0])
			pw, ok2 := decodeUnicodePwd(pwdOps[1].vals[0])
			if !ok1 || !ok2 {
				return errAttrConversion()
			}
			if !cur.pw.matches(oldPw) {
				s.badPassword(cur, s.policy(), now, false, cur.key == s.adminKey)
				return errWrongOldPassword()
			}
			newPassword = &pw
		default:
			return errWillNotPerform("unicodePwd: replace one value, or delete the old and add the new")
		}
	}

	for _, c := range changes {
		def := defOf(c.attr)
		lname := strings.ToLower(def.name)
		switch lname {
		case "pwdlastset", "lockouttime":
			if !s.canReset(p, e) {
				return errInsufficientRights()
			}
			if c.op != gldap.ReplaceAttribute || len(c.vals) != 1 {
				return errWillNotPerform(def.name + ": replace with one value")
			}
			n, err := strconv.ParseInt(c.vals[0], 10, 64)
			switch {
			case err != nil:
				return errConstraint(def.name)
			case lname == "pwdlastset" && n == 0:
				explicitPwdLastSet = &n
			case lname == "pwdlastset" && n == -1:
				t := fileTime(now)
				explicitPwdLastSet = &t
			case lname == "lockouttime" && n == 0:
				unlock = true
			default:
				return errWillNotPerform(def.name + ": only 0 (or -1 for pwdLastSet) may be written")
			}
			continue
		}
		if !s.isAdmin(p) {
			return errInsufficientRights()
		}
		if def.system {
			return errWillNotPerform("attribute " + def.name + " is owned by the system")
		}
		if typ, _ := rdnValue(e.dn); strings.EqualFold(typ, def.name) || lname == "name" {
			return errNotOnRDN(def.name)
		}
		if lerr := s.applyChange(e, def, c, permissive); lerr != nil {
			return lerr
		}
		replicated = true
	}

	if e.kind == kindUser || e.kind == kindGroup {
		sam := e.first("sAMAccountName")
		if !validSAM(sam) {
			return errConstraint("sAMAccountName")
		}
		if !s.unique("sAMAccountName", sam, e.key) {
			return errEntryExists()
		}
		if upn := e.first("userPrincipalName"); upn != "" && !s.unique("userPrincipalName", upn, e.key) {
			return errConstraint("userPrincipalName")
		}
	}
	if newPassword != nil {
		if lerr := s.checkPassword(e, *newPassword); lerr != nil {
			return lerr
		}
		setPassword(e, *newPassword, now)
		replicated = true
	}
	if explicitPwdLastSet != nil && e.int("pwdLastSet") != *explicitPwdLastSet {
		e.setInt("pwdLastSet", *explicitPwdLastSet)
		replicated = true
	}
	if unlock {
		e.setInt("badPwdCount", 0)
		if e.int("lockoutTime") != 0 {
			e.setInt("lockoutTime", 0)
			replicated = true
		}
	}
	if replicated {
		s.stamp(e, now)
	}
	// Commit: the entry keeps its place in the order.
	s.unindex(cur)
	*cur = *e
	s.index(cur)
	if slices.ContainsFunc(changes, func(c change) bool { return strings.EqualFold(c.attr, "member") }) {
		s.linksDirty = true
	}
	return nil
}

// applyChange applies one generic change to e.
func (s *store) applyChange(e *entry, def attrDef, c change, permissive bool) *ldapError {
	vals := slices.DeleteFunc(slices.Clone(c.vals), func(v string) bool { return v == "" })
	isMember := strings.EqualFold(def.name, "member")
	if isMember && c.op != gldap.DeleteAttribute {
		resolved, lerr := s.resolveMembers(vals)
		if lerr != nil {
			return lerr
		}
		vals = resolved
	}
	same := func(a, b string) bool {
		if def.syntax == synDN {
			return s.normKey(a) == s.normKey(b)
		}
		if def.syntax == synBinary {
			return a == b
		}
		return strings.EqualFold(a, b)
	}
	cur := e.get(def.name)
	switch c.op {
	case gldap.ReplaceAttribute:
		e.set(def.name, vals...)
	case gldap.AddAttribute:
		if len(vals) == 0 {
			return errConstraint(def.name)
		}
		out := slices.Clone(cur)
		for _, v := range vals {
			if slices.ContainsFunc(out, func(x string) bool { return same(x, v) }) {
				if permissive {
					continue
				}
				return errValueExists(def.name)
			}
			out = append(out, v)
		}
		e.set(def.name, out...)
	case gldap.DeleteAttribute:
		if len(cur) == 0 {
			if permissive {
				return nil
			}
			return errNoSuchAttribute(def.name)
		}
		if len(vals) == 0 {
			e.set(def.name)
			return nil
		}
		out := slices.Clone(cur)
		for _, v := range vals {
			i := slices.IndexFunc(out, func(x string) bool { return same(x, v) })
			if i < 0 {
				if permissive {
					continue
				}
				return errNoSuchAttribute(def.name)
			}
			out = slices.Delete(out, i, i+1)
		}
		e.set(def.name, out...)
	default:
		return errWillNotPerform(fmt.Sprintf("modify operation %d", c.op))
	}
	if strings.EqualFold(def.name, "objectClass") && kindOf(e.get("objectClass")) != e.kind {
		return errObjectClass("the structural class cannot change")
	}
	return nil
}
