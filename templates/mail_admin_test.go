package templates

import (
	"strings"
	"testing"
)

// TestLockoutStormListsAccounts: every account of the list is one line of
// the text body and one <li> of the HTML body, blank lines dropped.
func TestLockoutStormListsAccounts(t *testing.T) {
	m := loadTestMails(t)
	for _, lang := range supportedLanguages {
		data := realisticMailData(lang, MailLockoutStorm)
		data["accounts"] = "\n" + data["accounts"] + "\n\n"
		subject, text, html, err := m.RenderMail(lang, MailLockoutStorm, data)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(subject, "3") || !strings.Contains(subject, "5 minutes") {
			t.Errorf("%s: subject %q does not give the count and the window", lang, subject)
		}
		for _, account := range []string{"zlefevre (Zoé Lefèvre), 10:41", "jdoe (John Doe), 10:41", "asmith (Ann Smith), 10:42"} {
			if !strings.Contains(text, "\n"+account+"\n") {
				t.Errorf("%s: the text body does not list %q on a line of its own", lang, account)
			}
			if !strings.Contains(html, "<li>"+account+"</li>") {
				t.Errorf("%s: the HTML body does not list %q", lang, account)
			}
		}
		if n := strings.Count(html, "<li>"); n != 3 {
			t.Errorf("%s: the HTML body has %d list items, want 3", lang, n)
		}
	}
}

func TestNotMeNamesTheUser(t *testing.T) {
	m := loadTestMails(t)
	for _, lang := range supportedLanguages {
		subject, text, html, err := m.RenderMail(lang, MailNotMe, realisticMailData(lang, MailNotMe))
		if err != nil {
			t.Fatal(err)
		}
		for part, s := range map[string]string{"subject": subject, "text": text, "html": html} {
			if !strings.Contains(s, "zlefevre") {
				t.Errorf("%s: the %s does not name the account", lang, part)
			}
		}
		if !strings.Contains(text, "+•••••••••78") {
			t.Errorf("%s: the text body does not show the masked phone", lang)
		}
	}
}

// TestSMSBudgetNamesTheBudget: the alert says which budget, its limit and
// when, in the subject (the budget) and both bodies.
func TestSMSBudgetNamesTheBudget(t *testing.T) {
	m := loadTestMails(t)
	for _, lang := range supportedLanguages {
		subject, text, html, err := m.RenderMail(lang, MailSMSBudget, realisticMailData(lang, MailSMSBudget))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(subject, "sms.budgets.per_country_day.FR") {
			t.Errorf("%s: subject %q does not name the budget", lang, subject)
		}
		for part, s := range map[string]string{"text": text, "html": html} {
			for _, want := range []string{"sms.budgets.per_country_day.FR", "50", "10:42"} {
				if !strings.Contains(s, want) {
					t.Errorf("%s: the %s body lacks %q", lang, part, want)
				}
			}
		}
	}
}
