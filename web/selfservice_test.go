package web

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/replyreset/replyreset/directory/ldaplab"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
	"github.com/replyreset/replyreset/gateway/notify"
)

// Privileged accounts get no self-service (DESIGN, Security rules), against
// the real Samba AD of the admin app (admin_group Helpdesk, nested).

// domainAdmin adds a user and makes it a member of Domain Admins.
func (a *adminApp) domainAdmin(prefix string) string {
	a.t.Helper()
	name := a.user(prefix)
	a.promote(name)
	return name
}

func (a *adminApp) promote(username string) {
	a.t.Helper()
	a.lab.AddMember(a.t, "CN=Domain Admins,CN=Users,"+a.lab.BaseDN, dnOf(a.t, a, username))
}

// refusals returns the details of the self_service_refused events of username.
func (a *adminApp) refusals(username string) []string {
	a.t.Helper()
	evs, err := a.store.Audit(context.Background(), enroll.AuditFilter{Username: username, Action: enroll.ActionSelfServiceRefused})
	if err != nil {
		a.t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.Outcome != "denied" {
			a.t.Errorf("refusal event %+v: outcome %q", ev, ev.Outcome)
		}
		out = append(out, ev.Detail)
	}
	return out
}

func (a *adminApp) mailsTo(username string) int {
	return len(slices.DeleteFunc(a.mailer.Sent(), func(m notify.Mail) bool { return m.To != username+"@example.com" }))
}

// TestAdminActivationRefusesPrivileged: the console (one user, a group, an
// OU, a CSV file) and the API refuse to activate a Domain Admin or an admin
// group member, each with its reason; the others are activated.
func TestAdminActivationRefusesPrivileged(t *testing.T) {
	a := newAdminApp(t)
	b := a.browser(t)
	b.login(a.lab.HelpdeskUsername, a.lab.HelpdeskPassword)
	da := a.domainAdmin("da")
	helper := a.user("hd")
	a.lab.AddMember(t, a.lab.AdminGroupDN, dnOf(t, a, helper))
	ordinary := a.user("ord")
	daReason := a.text("admin.err.no_self_service.protected_group", map[string]string{"username": da, "group": "Domain Admins"})
	hdReason := a.text("admin.err.no_self_service.admin_group", map[string]string{"username": helper, "group": "Helpdesk"})

	t.Run("one user", func(t *testing.T) {
		p := b.post("/admin/users/activate", url.Values{"username": {da}})
		if p.code != http.StatusOK || !strings.Contains(p.body, "0 emails sent, 1 not sent") || !strings.Contains(visibleText(p.body), daReason) {
			t.Fatalf("activate a Domain Admin: %d %s\n%s", p.code, errorText(p.body), visibleText(p.body))
		}
		if n := a.mailsTo(da); n != 0 {
			t.Fatalf("%d activation mails to a Domain Admin", n)
		}
		if r := a.refusals(da); len(r) != 1 || !strings.HasPrefix(r[0], "activate: "+da+" is a member of Domain Admins") {
			t.Fatalf("refusals audited: %q", r)
		}
	})
	t.Run("group, OU and CSV", func(t *testing.T) {
		grp := a.lab.AddGroup(t, ldaplab.GroupSpec{Name: a.lab.UniqueName("mixed"),
			Members: []string{dnOf(t, a, da), dnOf(t, a, helper), dnOf(t, a, ordinary)}})
		p := b.post("/admin/users/activate", url.Values{"group": {grp}})
		shown := visibleText(p.body)
		if p.code != http.StatusOK || !strings.Contains(p.body, "1 email sent, 2 not sent") ||
			!strings.Contains(shown, daReason) || !strings.Contains(shown, hdReason) {
			t.Fatalf("activate a group: %d\n%s", p.code, shown)
		}
		ou := a.lab.AddOU(t, a.lab.UniqueName("ou"), "")
		inOU := a.lab.UniqueName("ouda")
		a.lab.AddUserIn(t, ou, ldaplab.UserSpec{Username: inOU, Password: "Initial#Pass1x", Mail: inOU + "@example.com"})
		a.promote(inOU)
		p = b.post("/admin/users/activate", url.Values{"ou": {ou}})
		if !strings.Contains(p.body, "0 emails sent, 1 not sent") || !strings.Contains(visibleText(p.body), inOU+" is a member of Domain Admins") {
			t.Fatalf("activate an OU: %d\n%s", p.code, visibleText(p.body))
		}
		p = b.postMultipart("/admin/users/activate", "csv", "people.csv", "username\n"+da+"\n"+helper+"\n")
		if !strings.Contains(p.body, "people.csv: 0 emails sent, 2 not sent") || !strings.Contains(visibleText(p.body), daReason) {
			t.Fatalf("activate from CSV: %d\n%s", p.code, visibleText(p.body))
		}
		if a.mailsTo(da)+a.mailsTo(helper)+a.mailsTo(inOU) != 0 {
			t.Fatal("a privileged account was mailed an activation link")
		}
	})
	t.Run("API", func(t *testing.T) {
		tok := a.token("bot")
		var res struct {
			Activated int             `json:"activated"`
			Failed    int             `json:"failed"`
			Results   []activationRow `json:"results"`
		}
		code, e := a.api(t, tok, "POST", "/api/v1/activations", `{"usernames":["`+da+`"]}`, &res)
		if code != 200 || res.Failed != 1 || res.Results[0].Code != "no_self_service" ||
			!strings.Contains(res.Results[0].Error, da+" is a member of Domain Admins: privileged accounts can't use self-service") {
			t.Fatalf("API activation of a Domain Admin: %d %+v %+v", code, e, res)
		}
		code, e = a.api(t, tok, "POST", "/api/v1/enrollments", `{"username":"`+da+`","phone":"+12015550181"}`, nil)
		wantAPI(t, "API enroll of a Domain Admin", code, e, http.StatusUnprocessableEntity, "no_self_service")
		if !strings.Contains(e.Error.Message, "member of Domain Admins") {
			t.Errorf("API enroll refusal message %q names no reason", e.Error.Message)
		}
	})
	t.Run("helpdesk enroll in the console", func(t *testing.T) {
		p := b.post("/admin/enroll", url.Values{"username": {da}, "phone": {"+12015550182"}})
		if p.code != http.StatusUnprocessableEntity || errorText(p.body) != visibleText(daReason) {
			t.Fatalf("console enroll of a Domain Admin: %d %q, want %q", p.code, errorText(p.body), daReason)
		}
		if _, err := a.store.Enrollment(context.Background(), da); err == nil {
			t.Fatal("the Domain Admin was enrolled")
		}
	})
}

// TestEnrollmentRefusesPrivileged: a user promoted to Domain Admins after
// the activation mail cannot complete the enrollment, nor open the link
// again; the page says to call the service desk.
func TestEnrollmentRefusesPrivileged(t *testing.T) {
	a := newAdminApp(t)
	name := a.user("enr")
	if _, err := a.svc.Activate(context.Background(), name, "admin:root"); err != nil {
		t.Fatal(err)
	}
	sent := a.mailer.Sent()
	m := linkRE.FindStringSubmatch(sent[len(sent)-1].Text)
	u, err := url.Parse(m[1])
	if err != nil {
		t.Fatal(err)
	}
	link := u.Path
	b := newHTTPBrowser(t, a.handler, "en")
	if p := b.get(link); p.code != http.StatusOK {
		t.Fatalf("open the link: %d", p.code)
	}
	if p := b.post(link+"/phone", url.Values{"phone": {"+12015550183"}, "method": {"sms"}}); p.code != http.StatusSeeOther {
		t.Fatalf("send the code: %d %s", p.code, errorText(p.body))
	}
	code := enrolltest.LastCode(t, a.store, a.sealer)
	a.promote(name)
	refused := func(p answer, what string) {
		t.Helper()
		if p.code != http.StatusForbidden || !strings.Contains(visibleText(p.body), a.text("err.no_self_service.text", nil)) ||
			!strings.Contains(p.header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s\n%s", what, p.code, p.header.Get("Content-Type"), visibleText(p.body))
		}
	}
	refused(b.post(link+"/verify", url.Values{"code": {code}}), "complete after the promotion")
	if _, err := a.store.Enrollment(context.Background(), name); err == nil {
		t.Fatal("the promoted user was enrolled")
	}
	refused(b.get(link), "open the link after the promotion")
	r := a.refusals(name)
	if len(r) != 2 || !strings.HasPrefix(r[0], "enroll: "+name+" is a member of Domain Admins") || !strings.HasPrefix(r[1], "enroll_open: ") {
		t.Fatalf("refusals audited: %q", r)
	}
}

// TestPhoneChangeRefusesPrivileged: the self-service phone change refuses
// a privileged account at sign-in (right password), and a user promoted
// while the change is under way at the code.
func TestPhoneChangeRefusesPrivileged(t *testing.T) {
	lab := ldaplab.Samba(t)
	a := newChangeApp(t, lab)
	const phone, newPhone = "+12015550611", "+12015550612"
	username, dn, password := a.enrolled("pcda", phone, enroll.StateActive)
	b := a.browser()
	b.signedIn(username, password)
	if p := b.post("/phone/change/number", url.Values{"phone": {newPhone}, "method": {"sms"}}); p.code != http.StatusSeeOther {
		t.Fatalf("send the code: %d %s", p.code, errorText(p.body))
	}
	code := enrolltest.LastCode(t, a.store, a.sealer)
	lab.AddMember(t, "CN=Domain Admins,CN=Users,"+lab.BaseDN, dn)
	a.wantAlert(b.post("/phone/change/verify", url.Values{"code": {code}}), http.StatusForbidden, "change.err.no_self_service", nil)
	if e, err := a.store.Enrollment(context.Background(), username); err != nil || e.Phone != phone {
		t.Fatalf("enrollment after the refused change: %+v %v, want phone %s", e, err, phone)
	}
	a.wantAlert(a.browser().signIn(username, password), http.StatusForbidden, "change.err.no_self_service", nil)
	evs, err := a.store.Audit(context.Background(), enroll.AuditFilter{Username: username, Action: enroll.ActionSelfServiceRefused})
	if err != nil || len(evs) != 2 || !strings.HasPrefix(evs[0].Detail, "phone_change: "+username+" is a member of Domain Admins") {
		t.Fatalf("refusals audited: %+v %v", evs, err)
	}
}
