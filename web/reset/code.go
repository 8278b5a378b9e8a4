package reset

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// sendTimeout bounds the work a start must finish once begun (the lookup,
// the marks, the queueing), on a context the browser cannot cancel: a
// double tap must not leave a code recorded but never queued.
const sendTimeout = 15 * time.Second

// POST /reset/start: the name typed. Whatever it names, the answer is the
// code page, after the same work: the address's and the name's limits,
// a directory lookup, an enrollment read, one store write of the same
// shape and one audit event. Only an enrolled, active account gets a code
// sent (an app enrollment gets none: its app shows the code).
func (s *Site) postStart(c echo.Context) error {
	login := strings.TrimSpace(c.FormValue("login"))
	if login == "" || len(login) > maxLogin || strings.ContainsFunc(login, unicode.IsControl) {
		return s.form(c, http.StatusUnprocessableEntity, "", &templates.Msg{Key: "reset.err.login_empty"})
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), sendTimeout)
	defer cancel()
	began, now := time.Now(), s.now()
	ok, err := s.d.Store.Allow(ctx, "reset-web:start:"+c.RealIP(), now, time.Hour, startsPerHour)
	if err != nil {
		return s.failed(c, "rate limit", err)
	}
	if !ok {
		return s.tooMany(c, time.Hour)
	}
	e, found, err := s.enrolled(ctx, login)
	if err != nil {
		return s.failed(c, "look the account up", err)
	}
	st := state{ID: newID(), Login: login, Expires: now.Add(codeTTL)}
	// A code nobody knows: the shape of the state, and of its check, is
	// the same for every name.
	st.CodeHash = s.codeHash(st.ID, newCode())
	if found {
		st.Username = e.Username
	}
	ok, err = s.d.Store.Allow(ctx, "reset-web:codes:"+st.accountKey(), now, time.Hour, codesPerHour)
	if err != nil {
		return s.failed(c, "rate limit", err)
	}
	ev := enroll.Event{Username: st.Username, Outcome: "no_enrollment"}
	switch {
	case !found:
		// The write an enrolled account's send makes, so that an unknown
		// name costs the store the same.
		if _, err = s.d.Store.MarkMessage(ctx, "reset-web:issued:"+st.ID, now, codeTTL); err != nil {
			return s.failed(c, "mark the start", err)
		}
	case !ok:
		ev.Outcome, ev.Detail = "rate_limited", strconv.Itoa(codesPerHour)+" codes an hour"
	default:
		st.Method = codeMethod(e)
		ev.Phone, ev.Outcome, ev.Detail = e.Phone, "code_sent", st.Method
		if st.Method == "app" {
			_, err = s.d.Store.MarkMessage(ctx, "reset-web:issued:"+st.ID, now, codeTTL)
		} else {
			err = s.sendCode(ctx, &st, e)
		}
		if err != nil {
			return s.failed(c, "send the code", err)
		}
	}
	s.audit(c, ev)
	if err := s.keep(c, st); err != nil {
		return s.failed(c, "keep the state", err)
	}
	s.floor(c.Request().Context(), began)
	return c.Redirect(http.StatusSeeOther, base)
}

// floor returns once StartFloor has passed since began (or the browser
// gave up).
func (s *Site) floor(ctx context.Context, began time.Time) {
	if d := s.d.StartFloor - time.Since(began); d > 0 {
		_ = pause(ctx, d) // a browser that gave up gets its answer at once
	}
}

// enrolled finds the active enrollment login names: by username, else by
// mail address. An unknown name, one without an enrollment or with one
// that is not active, is not found (no error); the same reads are made.
func (s *Site) enrolled(ctx context.Context, login string) (enroll.Enrollment, bool, error) {
	u, err := s.d.Directory.FindUser(ctx, login)
	if errors.Is(err, directory.ErrNotFound) && strings.Contains(login, "@") {
		u, err = s.d.Directory.FindByMail(ctx, login)
	}
	name := u.Username
	switch {
	case errors.Is(err, directory.ErrNotFound), errors.Is(err, directory.ErrAmbiguous), errors.Is(err, directory.ErrInvalidInput):
		name = login
	case err != nil:
		return enroll.Enrollment{}, false, err
	}
	e, serr := s.d.Store.Enrollment(ctx, name)
	switch {
	case errors.Is(serr, enroll.ErrNotFound), errors.Is(serr, enroll.ErrInvalid):
		return enroll.Enrollment{}, false, nil
	case serr != nil:
		return enroll.Enrollment{}, false, serr
	}
	return e, err == nil && e.State == enroll.StateActive, nil
}

// codeMethod is how an enrollment gets its code: the app when it set one
// up, a call for a voice enrollment, else a text message.
func codeMethod(e enroll.Enrollment) string {
	switch {
	case e.Method == "app" && len(e.TOTPSealed) > 0:
		return "app"
	case e.Method == "voice":
		return "voice"
	}
	return "sms"
}

// sendCode makes the code of st and queues it to the enrolled phone.
func (s *Site) sendCode(ctx context.Context, st *state, e enroll.Enrollment) error {
	code := newCode()
	st.CodeHash = s.codeHash(st.ID, code)
	kind, key, args := enroll.KindSMS, "sms.reset_web.code", map[string]string{"code": code, "username": e.Username,
		"minutes": strconv.Itoa(int(codeTTL / time.Minute))}
	if st.Method == "voice" {
		kind, key, args = enroll.KindCall, "voice.reset_web.code", map[string]string{"digits": spoken(code)}
	}
	return s.queue(ctx, kind, e, "reset_web_code", s.d.Messages.Text(e.Language, key, args))
}

func (s *Site) queue(ctx context.Context, kind string, e enroll.Enrollment, purpose, body string) error {
	_, err := s.d.Outbox.Enqueue(ctx, enroll.OutboundMessage{Kind: kind, To: e.Phone, Language: e.Language,
		Purpose: purpose, Username: e.Username, Priority: enroll.PriorityHigh, CreatedAt: s.now()}, body)
	if err != nil {
		return fmt.Errorf("reset: queue the %s: %w", purpose, err)
	}
	return nil
}

var codeSpace = big.NewInt(1_000_000)

func newCode() string {
	n, err := rand.Int(rand.Reader, codeSpace)
	if err != nil {
		panic("reset: crypto/rand failed: " + err.Error())
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// spoken spells a code digit by digit for a call: "1, 2, 3, 4, 5, 6".
func spoken(code string) string { return strings.Join(strings.Split(code, ""), ", ") }

// cleanCode drops the spaces and dashes typed inside a code.
func cleanCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, strings.TrimSpace(code))
}
