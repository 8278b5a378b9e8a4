package gateway_test

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
)

// pwdStamp is the entry's last password change as the server keeps it
// (AD pwdLastSet, OpenLDAP pwdChangedTime), read as the administrator.
func pwdStamp(t *testing.T, lab *ldaplab.Server, dn string) string {
	t.Helper()
	attr := "pwdLastSet"
	if lab.Dialect == ldaplab.DialectOpenLDAP {
		attr = "pwdChangedTime"
	}
	res, err := lab.AdminConn(t).Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 10, false,
		"(objectClass=*)", []string{attr, "uSNChanged", "modifyTimestamp"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read %s of %s: %v", attr, dn, err)
	}
	e := res.Entries[0]
	return attr + "=" + e.GetAttributeValue(attr) + " modify=" + e.GetAttributeValue("modifyTimestamp")
}

// TestPrivilegedRefusedBySMS: a user enrolled as an ordinary account and
// made privileged afterwards (Domain Admins on Samba, a reset.deny_groups
// group on OpenLDAP) gets no password from RESET and no unlock from UNLOCK:
// the check runs at each act. The directory entry is not written, the user
// gets "call the service desk", and each refusal is audited.
func TestPrivilegedRefusedBySMS(t *testing.T) {
	forEachDirectory(t, func(t *testing.T, lab *ldaplab.Server) {
		denyName := lab.UniqueName("nosms")
		denyDN := "cn=" + denyName + "," + lab.GroupsDN()
		if lab.Dialect == ldaplab.DialectAD {
			denyDN = "CN=" + denyName + "," + lab.GroupsDN()
		}
		var p directory.SelfServicePolicy
		if lab.Dialect == ldaplab.DialectOpenLDAP {
			p.DenyGroups = []string{denyDN}
		}
		h := newHarnessOpt(t, lab, directory.Options{SelfService: p}, nil)
		const phone = "+12015550161"
		username, dn, password := h.user(phone, "en")
		promote := func() {
			if lab.Dialect == ldaplab.DialectAD {
				lab.AddMember(t, "CN=Domain Admins,CN=Users,"+lab.BaseDN, dn)
				return
			}
			lab.AddGroup(t, ldaplab.GroupSpec{Name: denyName, Members: []string{dn}})
		}
		// Enrolled while ordinary: STATUS answers. Then promoted.
		if r, _ := h.sms(phone, "STATUS"); !strings.Contains(oneText(t, r), username) {
			t.Fatalf("STATUS before the promotion = %q", r.body)
		}
		promote()

		before := pwdStamp(t, lab, dn)
		r, _ := h.sms(phone, "RESET")
		if got, want := oneText(t, r), h.text("sms.no_self_service", nil); got != want {
			t.Fatalf("RESET of a privileged account = %q, want %q", got, want)
		}
		if after := pwdStamp(t, lab, dn); after != before {
			t.Errorf("the refused RESET wrote the entry: %s, then %s", before, after)
		}
		h.expectBind(dn, password, "ok") // the password is unchanged

		lab.LockOut(t, dn)
		r, _ = h.sms(phone, "UNLOCK")
		if got, want := oneText(t, r), h.text("sms.no_self_service", nil); got != want {
			t.Fatalf("UNLOCK of a privileged account = %q, want %q", got, want)
		}
		h.expectBind(dn, password, "locked")

		var refused []enroll.Event
		for _, ev := range h.audit(username) {
			switch ev.Action {
			case enroll.ActionSelfServiceRefused:
				refused = append(refused, ev)
			case "reset", "unlock":
				t.Errorf("audit has a %s event: %+v", ev.Action, ev)
			}
		}
		reason := username + " is a member of Domain Admins: privileged accounts can't use self-service"
		if lab.Dialect == ldaplab.DialectOpenLDAP {
			reason = username + " is a member of " + denyName + " (reset.deny_groups)"
		}
		if len(refused) != 2 || !strings.HasPrefix(refused[0].Detail, "reset: "+reason) ||
			!strings.HasPrefix(refused[1].Detail, "unlock: "+reason) || refused[0].Outcome != "denied" ||
			refused[0].Phone != phone || refused[0].Actor != "sms:"+phone {
			t.Fatalf("refusals audited = %+v, want reset and unlock with %q", refused, reason)
		}
	})
}

// TestSelfServiceCheckFailsClosed: when the directory cannot say whether
// the account may use self-service, RESET sets no password.
func TestSelfServiceCheckFailsClosed(t *testing.T) {
	lab := ldaplab.OpenLDAP(t)
	missing := "cn=" + lab.UniqueName("gone") + "," + lab.GroupsDN()
	h := newHarnessOpt(t, lab, directory.Options{SelfService: directory.SelfServicePolicy{DenyGroups: []string{missing}}},
		func(_ *directory.Config, _ *gateway.Settings) {})
	const phone = "+12015550162"
	_, dn, password := h.user(phone, "en")
	r, _ := h.sms(phone, "RESET")
	if got := oneText(t, r); got != h.text("sms.reset.failed", nil) {
		t.Fatalf("RESET with a deny group that does not exist = %q, want sms.reset.failed", got)
	}
	h.expectBind(dn, password, "ok")
}
