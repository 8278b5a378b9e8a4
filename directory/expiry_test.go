package directory_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
)

// expiries reads the expiry of names and returns it by lower-cased username.
func expiries(t *testing.T, d *directory.Client, names ...string) map[string]directory.PasswordExpiry {
	t.Helper()
	got, err := d.PasswordExpiries(t.Context(), names)
	if err != nil {
		t.Fatalf("PasswordExpiries: %v", err)
	}
	out := map[string]directory.PasswordExpiry{}
	for _, pe := range got {
		key := strings.ToLower(pe.Username)
		if _, dup := out[key]; dup {
			t.Errorf("%s answered twice", pe.Username)
		}
		out[key] = pe
	}
	return out
}

func wantExpiry(t *testing.T, got map[string]directory.PasswordExpiry, username string, mustChange bool, about time.Duration) {
	t.Helper()
	pe, ok := got[strings.ToLower(username)]
	switch {
	case !ok:
		t.Errorf("%s: no answer", username)
	case pe.MustChange != mustChange:
		t.Errorf("%v: want must change %v", pe, mustChange)
	case about == 0 && !pe.Expires.IsZero():
		t.Errorf("%v: want never", pe)
	case about != 0 && (pe.Expires.Before(time.Now().Add(about-2*time.Minute)) || pe.Expires.After(time.Now().Add(about+time.Second))):
		t.Errorf("%v: want about %s from now", pe, about)
	}
}

func setPassword(t *testing.T, d *directory.Client, username string, mustChange bool) {
	t.Helper()
	u, err := d.FindUser(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SetPassword(t.Context(), u, "Expiry#Test7pw", directory.SetPasswordOptions{MustChange: mustChange}); err != nil {
		t.Fatalf("set the password of %s: %v", username, err)
	}
}

// TestPasswordExpiries reads real expiry dates: Samba computes
// msDS-UserPasswordExpiryTimeComputed from its 42-day maxPwdAge; OpenLDAP's
// come from pwdChangedTime and the policy's pwdMaxAge.
func TestPasswordExpiries(t *testing.T) {
	t.Run("SambaAD", func(t *testing.T) {
		s := ldaplab.Samba(t)
		d := openClient(t, labConfig(s, s.ServiceDN, s.ServicePassword))
		aging, must, never := s.UniqueName("aging"), s.UniqueName("must"), s.UniqueName("never")
		for _, u := range []string{aging, must, never} {
			s.AddUser(t, ldaplab.UserSpec{Username: u})
		}
		setPassword(t, d, must, true)
		m := ldap.NewModifyRequest("CN="+never+","+s.UsersDN, nil)
		m.Replace("userAccountControl", []string{"66048"}) // DONT_EXPIRE_PASSWORD
		if err := s.AdminConn(t).Modify(m); err != nil {
			t.Fatal(err)
		}
		// More names than one search asks for, hostile ones among them.
		names := []string{"*", "x)(sAMAccountName=*", "nul\x00" + aging, strings.ToUpper(aging)}
		for i := range 120 {
			names = append(names, fmt.Sprintf("nobody%d", i))
		}
		names = append(names, must, never)
		got := expiries(t, d, names...)
		if len(got) != 3 {
			t.Errorf("answers for %d users, want 3: %v", len(got), got)
		}
		wantExpiry(t, got, aging, false, 42*24*time.Hour)
		wantExpiry(t, got, must, true, 0)
		wantExpiry(t, got, never, false, 0)
	})
	t.Run("OpenLDAP", func(t *testing.T) {
		// An OU of its own, under the users (where the service account may
		// set passwords), holding one policy: with the OU as base DN that
		// policy is the only one, so it is the default.
		s := ldaplab.OpenLDAP(t)
		ou := s.AddOU(t, s.UniqueName("expiry"), s.UsersDN)
		policy := "cn=oneday," + ou
		add := ldap.NewAddRequest(policy, nil)
		add.Attribute("objectClass", []string{"device", "pwdPolicy"})
		add.Attribute("cn", []string{"oneday"})
		add.Attribute("pwdAttribute", []string{"userPassword"})
		add.Attribute("pwdMaxAge", []string{"86400"})
		admin := s.AdminConn(t)
		if err := admin.Add(add); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { // other tests may count the policies
			if err := s.AdminConn(t).Del(ldap.NewDelRequest(policy, nil)); err != nil {
				t.Errorf("delete policy: %v", err)
			}
		})
		inOU := labConfig(s, s.ServiceDN, s.ServicePassword)
		inOU.BaseDN = ou
		d := openClient(t, inOU)
		defaulted, aging, must, never, dangling := s.UniqueName("default"), s.UniqueName("aging"), s.UniqueName("must"),
			s.UniqueName("never"), s.UniqueName("dangling")
		subentry := map[string]string{aging: policy, never: "cn=default,ou=policies," + s.BaseDN, // no pwdMaxAge
			dangling: "cn=gone,ou=policies," + s.BaseDN}
		for _, u := range []string{defaulted, aging, must, never, dangling} {
			dn := s.AddUserIn(t, ou, ldaplab.UserSpec{Username: u})
			if p := subentry[u]; p != "" {
				m := ldap.NewModifyRequest(dn, nil)
				m.Replace("pwdPolicySubentry", []string{p})
				if err := admin.Modify(m); err != nil {
					t.Fatal(err)
				}
			}
			setPassword(t, d, u, u == must) // ppolicy stamps pwdChangedTime
		}
		all := []string{defaulted, aging, must, never, dangling}
		got := expiries(t, d, all...)
		wantExpiry(t, got, defaulted, false, 24*time.Hour)
		wantExpiry(t, got, aging, false, 24*time.Hour)
		wantExpiry(t, got, must, true, 0)
		wantExpiry(t, got, never, false, 0)
		wantExpiry(t, got, dangling, false, 0)

		// Under the whole base there are several policies: without
		// pwdPolicySubentry the expiry cannot be told, and is left out.
		got = expiries(t, openClient(t, labConfig(s, s.ServiceDN, s.ServicePassword)), all...)
		if _, ok := got[strings.ToLower(defaulted)]; ok || len(got) != 4 {
			t.Errorf("answers %v: want none for %s, whose policy cannot be told", got, defaulted)
		}
		wantExpiry(t, got, aging, false, 24*time.Hour)
		wantExpiry(t, got, never, false, 0)
	})
}
