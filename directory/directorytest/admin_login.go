package directorytest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/replyreset/replyreset/directory"
)

// The admin-queries suite, part three: the login name forms and
// cancellation.

func testLoginForms(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	ctx := ctxT(t)
	p, dn := addPerson(t, b, "login", Person{UserSpec: UserSpec{DisplayName: "Login Person", Mail: b.UniqueName("lmail") + "@example.test"}})
	principal := p.Mail
	if b.UPNSuffix != "" {
		principal = p.Username + b.UPNSuffix
	}
	domain := b.NetBIOSDomain
	if domain == "" {
		domain = "ANYDOMAIN"
	}
	for _, login := range []string{p.Username, principal, strings.ToUpper(principal), domain + `\` + p.Username,
		strings.ToLower(domain) + `\` + strings.ToUpper(p.Username)} {
		u, err := d.Authenticate(ctx, login, p.Password)
		if err != nil || !sameDN(u.DN, dn) || u.Username != p.Username {
			t.Errorf("Authenticate(%q) = %s %s, %v; want %s", login, u.Username, u.DN, err, dn)
		}
	}
	if _, err := d.Authenticate(ctx, principal, "Wrong#Pass9z"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("Authenticate(%q, wrong password) = %v, want ErrInvalidCredentials", principal, err)
	}
	if _, err := d.Authenticate(ctx, domain+`\`+p.Username, ""); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("Authenticate(DOMAIN\\user, empty password) = %v, want ErrInvalidCredentials", err)
	}
	notFound := []string{`\` + p.Username, domain + `\`, domain + `\\` + p.Username, domain + `\` + principal,
		"@" + p.Username, p.Username + "@", b.UniqueName("ghost") + "@example.test", domain + `\` + b.UniqueName("ghost"),
		"*@example.test", domain + `\*`, p.Username + "\x00@x"}
	if b.NetBIOSDomain != "" {
		notFound = append(notFound, "NOT"+b.NetBIOSDomain+`\`+p.Username)
	}
	if b.UPNSuffix != "" {
		notFound = append(notFound, p.Mail) // AD: user@domain is the UPN, not the mail
	}
	for _, login := range notFound {
		if u, err := d.Authenticate(ctx, login, p.Password); !errors.Is(err, directory.ErrNotFound) {
			t.Errorf("Authenticate(%q) = %s, %v; want ErrNotFound", login, u.DN, err)
		}
	}
	if b.UPNSuffix == "" {
		// Mail is not unique: a shared one names nobody.
		shared := b.UniqueName("shared") + "@example.test"
		s1, _ := addPerson(t, b, "lsh", Person{UserSpec: UserSpec{Mail: shared}})
		addPerson(t, b, "lsh", Person{UserSpec: UserSpec{Mail: shared}})
		if _, err := d.Authenticate(ctx, shared, s1.Password); !errors.Is(err, directory.ErrAmbiguous) {
			t.Errorf("Authenticate(a mail two users have) = %v, want ErrAmbiguous", err)
		}
	}
	if b.SpecialCharUsernames {
		// A username that looks like user@domain names its owner, even when
		// it is another user's mail.
		owner, odn := addPerson(t, b, "", Person{UserSpec: UserSpec{Username: b.UniqueName("at") + "@example.test"}})
		addPerson(t, b, "atmail", Person{UserSpec: UserSpec{Mail: owner.Username}})
		if u, err := d.Authenticate(ctx, owner.Username, owner.Password); err != nil || !sameDN(u.DN, odn) {
			t.Errorf("Authenticate(%q), a username = %s, %v; want %s", owner.Username, u.DN, err, odn)
		}
	}
}

func testAdminCancelled(t *testing.T, b AdminBackend) {
	d := b.Open(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := d.SearchUsers(ctx, "anyone", 10); err == nil || errors.Is(err, directory.ErrInvalidInput) {
		t.Errorf("SearchUsers with a cancelled context: %v, want an unavailable error", err)
	}
	if _, err := d.GroupMembers(ctx, "anygroup"); err == nil || errors.Is(err, directory.ErrNotFound) {
		t.Errorf("GroupMembers with a cancelled context: %v, want an unavailable error", err)
	}
	if _, err := d.UsersUnder(ctx, b.BaseDN); err == nil {
		t.Errorf("UsersUnder with a cancelled context: no error")
	}
	if _, err := d.LockedUsers(ctx); err == nil {
		t.Errorf("LockedUsers with a cancelled context: no error")
	}
	if _, err := d.Authenticate(ctx, "anyone@example.test", "x"); err == nil || errors.Is(err, directory.ErrNotFound) {
		t.Errorf("Authenticate with a cancelled context: %v, want an unavailable error", err)
	}
}
