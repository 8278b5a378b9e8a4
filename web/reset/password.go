package reset

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// Passwords makes the generated passwords (password.Generator).
type Passwords interface {
	Generate(u directory.User) (string, error)
}

const (
	// maxPassword bounds a chosen password.
	maxPassword = 256
	// policyRetries: generated passwords the directory may refuse before
	// the reset gives up (as the SMS reset does).
	policyRetries = 3
	// retapWindow: a second password post of one reset this soon after the
	// first is the same person's double tap (the browser shows the second
	// answer only), and is done again; later, the reset is used up.
	retapWindow = 10 * time.Second
	// actTTL bounds how long a password post waits for another of the same
	// reset, and holds its lease.
	actTTL = 30 * time.Second
)

// POST /reset/password: a generated password (mode=generate), shown once
// on the answer, or the one the user chose (mode=choose, with
// reset.web.choose_password). The account is unlocked with it. A chosen
// password is not flagged must-change; a generated one is when
// password.must_change says so, as after an SMS reset. A refusal of the
// directory is explained in words and changes nothing; the user may try
// another. The posts of one reset run one at a time (a store lease), and
// once a password is set the reset is used up, but for a double tap.
func (s *Site) postPassword(c echo.Context) error {
	st, err := s.open(c)
	if err != nil || !st.Verified {
		return s.ended(c)
	}
	mode, chosen := c.FormValue("mode"), c.FormValue("password")
	if mode != "generate" && (mode != "choose" || !s.d.ChoosePassword) {
		return s.choosePage(c, http.StatusUnprocessableEntity, st, &templates.Msg{Key: "reset.err.mode"})
	}
	if mode == "choose" {
		if msg := checkChosen(chosen, c.FormValue("confirm")); msg != nil {
			return s.choosePage(c, http.StatusUnprocessableEntity, st, msg)
		}
	}
	u, e, answered, err := s.allowed(c, st)
	if answered {
		return err
	}
	if mode == "choose" {
		if pol := s.policy(c, u); pol != nil && pol.MinLength > 0 && utf8.RuneCountInString(chosen) < pol.MinLength {
			min := strconv.Itoa(pol.MinLength)
			s.audit(c, enroll.Event{Username: u.Username, Phone: e.Phone, Outcome: "policy_rejected", Detail: "shorter than " + min})
			return s.choosePage(c, http.StatusUnprocessableEntity, st, &templates.Msg{Key: "reset.err.policy.short_min",
				Args: map[string]string{"min": min}})
		}
		if msg := banned(chosen, u, st.Login, s.d.Banned); msg != nil {
			s.audit(c, enroll.Event{Username: u.Username, Phone: e.Phone, Outcome: "banned", Detail: msg.Key})
			return s.choosePage(c, http.StatusUnprocessableEntity, st, msg)
		}
	}
	// Once begun, the change finishes whatever the browser does.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), actTTL)
	defer cancel()
	release, err := s.hold(ctx, "reset-web:act:"+st.ID)
	if err != nil {
		return s.failed(c, "wait for the reset's other post", err)
	}
	defer release()
	acted := "reset-web:acted:" + st.ID
	now := s.now()
	if n, err := s.d.Store.BudgetHits(ctx, acted, now, doneTTL); err != nil {
		return s.failed(c, "read the reset's marks", err)
	} else if n > 0 {
		recent, err := s.d.Store.BudgetHits(ctx, acted, now, retapWindow)
		if err != nil {
			return s.failed(c, "read the reset's marks", err)
		}
		again, err := s.d.Store.Allow(ctx, "reset-web:retap:"+st.ID, now, doneTTL, 1)
		if err != nil {
			return s.failed(c, "mark the double tap", err)
		}
		if recent == 0 || !again {
			return s.usedUp(c)
		}
		if mode == "choose" {
			// The same password twice: the first tap set it (a second set
			// would be refused by the history); the same answer.
			if same, err := s.d.Store.BudgetHits(ctx, s.chosenMark(st.ID, chosen), now, doneTTL); err != nil {
				return s.failed(c, "read the reset's marks", err)
			} else if same > 0 {
				s.forget(c)
				return s.render(c, http.StatusOK, templates.PageResetDone, view{Done: &templates.Msg{Key: "reset.done.chosen",
					Args: map[string]string{"username": u.Username}}})
			}
		}
	}
	password, setErr, detail := chosen, error(nil), "password chosen, must_change=false unlock=true"
	if mode == "generate" {
		password, setErr = s.generate(ctx, u)
		detail = fmt.Sprintf("password generated, must_change=%t unlock=true", s.d.MustChange)
	} else {
		setErr = s.d.Directory.SetPassword(ctx, u, chosen, directory.SetPasswordOptions{Unlock: true, EnforcePolicy: true})
	}
	var policy *directory.PolicyError
	switch {
	case setErr == nil:
	case errors.Is(setErr, directory.ErrPartial):
		detail += "; partial: " + setErr.Error()
	case errors.As(setErr, &policy) && mode == "choose":
		s.audit(c, enroll.Event{Username: u.Username, Phone: e.Phone, Outcome: "policy_rejected", Detail: policy.Reason})
		return s.choosePage(c, http.StatusUnprocessableEntity, st, explain(policy.Reason))
	default:
		s.audit(c, enroll.Event{Username: u.Username, Phone: e.Phone, Outcome: "error", Detail: setErr.Error()})
		return s.failed(c, "set the password", setErr)
	}
	if _, err := s.d.Store.Allow(ctx, acted, now, doneTTL, 10); err != nil {
		s.d.Log.ErrorContext(ctx, "reset: mark the reset used", "err", err)
	}
	if mode == "choose" {
		if _, err := s.d.Store.Allow(ctx, s.chosenMark(st.ID, chosen), now, doneTTL, 1); err != nil {
			s.d.Log.ErrorContext(ctx, "reset: mark the chosen password", "err", err)
		}
	}
	outcome := "ok"
	if setErr != nil {
		outcome = "partial"
	}
	s.audit(c, enroll.Event{Username: u.Username, Phone: e.Phone, Outcome: outcome, Detail: detail})
	// A double tap sets the password twice; the owner is told once.
	if first, err := s.d.Store.MarkMessage(ctx, "reset-web:told:"+st.ID, now, doneTTL); err != nil || first {
		s.tell(c, e, "sms.reset_web.password")
		s.mail(c, u, e)
	}
	s.forget(c)
	if mode == "choose" {
		return s.render(c, http.StatusOK, templates.PageResetDone, view{Done: &templates.Msg{Key: "reset.done.chosen",
			Args: map[string]string{"username": u.Username}}})
	}
	return s.render(c, http.StatusOK, templates.PageResetPassword, view{Username: u.Username, Password: password,
		MustChange: s.d.MustChange})
}

// generate sets a generated password that the directory takes.
func (s *Site) generate(ctx context.Context, u directory.User) (string, error) {
	var err error
	for range policyRetries {
		var password string
		if password, err = s.d.Passwords.Generate(u); err != nil {
			return "", fmt.Errorf("reset: generate a password: %w", err)
		}
		err = s.d.Directory.SetPassword(ctx, u, password, directory.SetPasswordOptions{MustChange: s.d.MustChange, Unlock: true})
		if err == nil || errors.Is(err, directory.ErrPartial) {
			return password, err
		}
		if !errors.Is(err, directory.ErrPolicy) {
			return "", err
		}
		s.d.Log.WarnContext(ctx, "reset: the directory refused a generated password; trying another", "err", err)
	}
	return "", fmt.Errorf("reset: %d generated passwords refused: %w", policyRetries, err)
}

// checkChosen checks the fields of a chosen password: filled, not too
// long, the two alike.
func checkChosen(password, confirm string) *templates.Msg {
	switch {
	case password == "":
		return &templates.Msg{Key: "reset.err.password_empty"}
	case len(password) > maxPassword || !utf8.ValidString(password):
		return &templates.Msg{Key: "reset.err.password_long", Args: map[string]string{"max": fmt.Sprint(maxPassword)}}
	case password != confirm:
		return &templates.Msg{Key: "reset.err.mismatch"}
	}
	return nil
}

func (s *Site) chosenMark(id, password string) string {
	return "reset-web:chosen:" + id + ":" + s.d.Sealer.Hash("web-reset-chosen:"+id, password)[:32]
}

// hold takes the lease name, waiting for another holder to let go.
func (s *Site) hold(ctx context.Context, name string) (func(), error) {
	holder := newID()
	for {
		ok, err := s.d.Store.AcquireLease(ctx, name, holder, s.now(), actTTL)
		if err != nil {
			return nil, err
		}
		if ok {
			return func() {
				if err := s.d.Store.ReleaseLease(context.WithoutCancel(ctx), name, holder); err != nil {
					s.d.Log.ErrorContext(ctx, "reset: release the lease", "err", err)
				}
			}, nil
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func (s *Site) choosePage(c echo.Context, status int, st state, msg *templates.Msg) error {
	v := view{Username: st.Username, Error: msg, ChoosePassword: s.d.ChoosePassword}
	if s.d.ChoosePassword {
		if u, err := s.d.Directory.FindUser(c.Request().Context(), st.Username); err == nil {
			v.Policy = s.policy(c, u)
		}
	}
	return s.render(c, status, templates.PageResetChoose, v)
}

// policyView is the directory's password policy as the choice page
// shows it, before the user types.
type policyView struct {
	MinLength, History int // 0 when there is none
	Complex            bool
	Own                bool // the account has rules of its own that cannot be read
}

// policy reads u's password policy; nil (logged) when the directory does
// not say: the page then shows none, and the directory still decides.
func (s *Site) policy(c echo.Context, u directory.User) *policyView {
	p, err := s.d.Directory.PasswordPolicy(c.Request().Context(), u)
	if err != nil {
		s.d.Log.WarnContext(c.Request().Context(), "reset: the password policy cannot be read", "username", u.Username, "err", err)
		return nil
	}
	return &policyView{MinLength: p.MinLength, History: p.History, Complex: p.Complex, Own: p.Unread}
}

// usedUp answers a post of a reset whose password is set already.
func (s *Site) usedUp(c echo.Context) error {
	s.forget(c)
	return s.form(c, http.StatusConflict, "", &templates.Msg{Key: "reset.err.used"})
}

var minChars = regexp.MustCompile(`(\d+) characters`)

// explain words the directory's refusal of a chosen password: Samba's and
// AD's check_password_restrictions texts, OpenLDAP ppolicy's.
func explain(reason string) *templates.Msg {
	r := strings.ToLower(reason)
	switch {
	case strings.Contains(r, "too short") || strings.Contains(r, "minlength"):
		if m := minChars.FindStringSubmatch(r); m != nil {
			return &templates.Msg{Key: "reset.err.policy.short_min", Args: map[string]string{"min": m[1]}}
		}
		return &templates.Msg{Key: "reset.err.policy.short"}
	case strings.Contains(r, "history") || strings.Contains(r, "not being changed") || strings.Contains(r, "used recently"):
		return &templates.Msg{Key: "reset.err.policy.history"}
	case strings.Contains(r, "too young") || strings.Contains(r, "minimum password age") || strings.Contains(r, "pwdminage"):
		return &templates.Msg{Key: "reset.err.policy.age"}
	case strings.Contains(r, "complex") || strings.Contains(r, "categories"):
		return &templates.Msg{Key: "reset.err.policy.complexity"}
	case strings.Contains(r, "quality"): // ppolicy: too short, or refused by its checker
		return &templates.Msg{Key: "reset.err.policy.quality"}
	}
	return &templates.Msg{Key: "reset.err.policy.other", Args: map[string]string{"reason": reason}}
}
