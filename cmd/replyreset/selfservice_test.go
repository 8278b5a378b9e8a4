package main

import (
	"strings"
	"testing"

	"github.com/replyreset/replyreset/directory/ldaplab"
)

// TestCheckConfigPrivilegedServiceAccount: check-config warns (and still
// passes) when bind_dn is a Domain Admin; the lab's delegated service
// account gets no warning.
func TestCheckConfigPrivilegedServiceAccount(t *testing.T) {
	lab := ldaplab.Samba(t)
	tw := newTwilio(t, testAuthToken, testFromNumber)
	f := writeMoreConfig(t, labConfig(lab), moreConfig{twilio: tw, outbox: true})
	r := runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 0)
	if strings.Contains(r.stdout, "warning: the service account") {
		t.Errorf("the delegated service account got a warning:\n%v", r)
	}

	c := labConfig(lab)
	c.BindDN, c.BindPassword = lab.AdminDN, lab.AdminPassword
	f = writeMoreConfig(t, c, moreConfig{twilio: tw, outbox: true})
	r = runCLI(t, "check-config", "-config", f.Path)
	wantCode(t, r, 0)
	line, ok := lineWithPrefix(r.stdout, "warning: the service account is privileged: ")
	if !ok || !strings.Contains(line, "Domain Admins") {
		t.Errorf("no warning naming Domain Admins for an Administrator bind_dn:\n%v", r)
	}
	wantNoSecrets(t, r, lab.AdminPassword)
}

// TestEnrollCLIRefusesPrivileged: `enroll USER PHONE` refuses a Domain
// Admin with the reason, enrolls no one, and audits the refusal.
func TestEnrollCLIRefusesPrivileged(t *testing.T) {
	lab := ldaplab.Samba(t)
	f := writeConfig(t, labConfig(lab))
	user := lab.UniqueName("ccda")
	dn := lab.AddUser(t, ldaplab.UserSpec{Username: user, Mail: user + "@example.test"})
	lab.AddMember(t, "CN=Domain Admins,CN=Users,"+lab.BaseDN, dn)

	r := runCLI(t, "enroll", "-config", f.Path, user, "+1 201 555 0191")
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, user+" is a member of Domain Admins: privileged accounts can't use self-service") {
		t.Fatalf("enroll of a Domain Admin: want a refusal with the reason:\n%v", r)
	}
	r = mustRun(t, "audit", "-config", f.Path, "-format", "csv", "-user", user)
	if !strings.Contains(r.stdout, "self_service_refused") || !strings.Contains(r.stdout, "enroll_in_person: "+user+" is a member of Domain Admins") {
		t.Errorf("the refusal is not audited:\n%v", r)
	}
	if strings.Contains(r.stdout, ",enroll,") {
		t.Errorf("an enroll event was recorded:\n%v", r)
	}

	// activate: the same reason, and no mail.
	srv := newSMTP(t)
	f = writeMoreConfig(t, labConfig(lab), moreConfig{smtp: srv})
	r = runCLI(t, "activate", "-config", f.Path, user)
	if r.code == 0 || !strings.Contains(r.stdout, user+": NOT activated: "+user+" is a member of Domain Admins: privileged accounts can't use self-service") {
		t.Fatalf("activate of a Domain Admin: want the reason:\n%v", r)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("%d mails sent for a refused activation", n)
	}
}
