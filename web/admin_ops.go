package web

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// adminOps are the operations the console and the API share: sign-in,
// bulk activation, listings. Handlers only translate to and from HTTP.
type adminOps struct {
	dir   AdminDirectory
	svc   AdminService
	store AdminStore
	log   *slog.Logger
	now   func() time.Time
}

// withSource is the request's context with its client address, which the
// enrollment service records in the audit trail.
func withSource(c echo.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(c.Request().Context(), adminTimeout)
	return enroll.WithSource(ctx, c.RealIP()), cancel
}

// audit records an admin event the service does not record itself
// (sign-in, sign-out, exports).
func (o *adminOps) audit(c echo.Context, actor string, ev enroll.Event) {
	ev.Time, ev.Actor, ev.SourceIP = o.now(), actor, c.RealIP()
	if _, err := o.store.AppendAudit(c.Request().Context(), ev); err != nil {
		o.log.ErrorContext(c.Request().Context(), "audit write failed", "action", ev.Action, "err", err)
	}
}

type loginOutcome int

const (
	loginOK loginOutcome = iota
	loginBlocked
	loginBad
	loginNotAdmin
	loginMustChange
	loginLocked
	loginUnavailable
)

type loginResult struct {
	outcome loginOutcome
	user    directory.User
	until   time.Time // loginBlocked: refused until then
}

// loginKey names the account for the failed-login guard: jdoe, JDOE,
// CORP\jdoe and jdoe@corp.example count as one.
func loginKey(login string) string { return "admin-login:user:" + loginName(login) }

// loginName is the account a login names, for guard keys.
func loginName(login string) string {
	l := strings.ToLower(strings.TrimSpace(login))
	if i := strings.LastIndexByte(l, '\\'); i >= 0 {
		l = l[i+1:]
	}
	if i := strings.IndexByte(l, '@'); i > 0 {
		l = l[:i]
	}
	return l
}

// login checks an admin's credentials and group under the sign-in guard
// (signin_guard.go). A locked account answers any password as a wrong one
// does (the directory itself does not tell them apart); only the right
// password learns that the account is disabled or expired. Every attempt
// is audited, never with the password.
func (o *adminOps) login(ctx context.Context, c echo.Context, login, password string) loginResult {
	ev := enroll.Event{Action: "admin_login"}
	try, until, err := beginSignIn(ctx, o.store, o.now, loginKey(login), "admin-login:ip:"+c.RealIP())
	if err != nil {
		o.log.ErrorContext(ctx, "admin login guard", "err", err)
		return loginResult{outcome: loginUnavailable}
	}
	if try == nil {
		ev.Outcome, ev.Detail = "blocked", "too many failed sign-ins"
		o.audit(c, "admin-login", ev)
		return loginResult{outcome: loginBlocked, until: until}
	}
	guardErr := func(err error) {
		if err != nil {
			o.log.ErrorContext(ctx, "admin login guard", "err", err)
		}
	}
	start := time.Now()
	u, err := o.dir.Authenticate(ctx, login, password)
	ev.Username = u.Username
	res := loginResult{user: u}
	switch {
	case err == nil:
		guardErr(try.passwordRight(ctx))
		member, err := o.dir.IsAdmin(ctx, u.Username)
		switch {
		case err != nil:
			o.log.ErrorContext(ctx, "admin login: group check", "err", err)
			res.outcome, ev.Outcome, ev.Detail = loginUnavailable, "error", err.Error()
		case !member:
			res.outcome, ev.Outcome = loginNotAdmin, "not_admin"
		default:
			res.outcome, ev.Outcome = loginOK, "ok"
		}
	case errors.Is(err, directory.ErrInvalidCredentials), errors.Is(err, directory.ErrNotFound),
		errors.Is(err, directory.ErrAmbiguous), errors.Is(err, directory.ErrLocked):
		res = loginResult{outcome: loginBad}
		ev.Outcome = "bad_credentials"
		defer waitFloor(ctx, start)
		switch {
		case u.Username == "":
			ev.Detail = "no such user"
		case errors.Is(err, directory.ErrLocked):
			ev.Detail = "the directory says the account is locked (the password was not checked)"
		}
		if !try.blocks.IsZero() {
			ev.Detail = strings.TrimPrefix(ev.Detail+"; now blocked until "+try.blocks.UTC().Format(time.RFC3339), "; ")
		}
	case errors.Is(err, directory.ErrMustChange):
		guardErr(try.passwordRight(ctx))
		res.outcome, ev.Outcome = loginMustChange, "must_change"
	case errors.Is(err, directory.ErrDisabled), errors.Is(err, directory.ErrAccountExpired), errors.Is(err, directory.ErrPasswordExpired):
		guardErr(try.passwordRight(ctx))
		res.outcome, ev.Outcome, ev.Detail = loginLocked, "account_unusable", err.Error()
	default:
		guardErr(try.notTried(ctx))
		o.log.ErrorContext(ctx, "admin login: directory", "err", err)
		res.outcome, ev.Outcome, ev.Detail = loginUnavailable, "error", err.Error()
	}
	o.audit(c, "admin-login", ev)
	return res
}

// activationRow is the result of activating one user.
type activationRow struct {
	Username string         `json:"username"`
	OK       bool           `json:"ok"`
	Mail     string         `json:"mail,omitempty"`
	Expires  string         `json:"-"`
	Expiry   time.Time      `json:"expires_at,omitzero"`
	Code     string         `json:"error_code,omitempty"`
	Error    string         `json:"error,omitempty"`
	Problem  *templates.Msg `json:"-"`
}

// Bounds of one bulk activation: what a request may carry, how many mails
// go out at once, and how long it may take before the rest is reported
// as not attempted (the HTTP write timeout is 30 s).
const (
	maxBulk         = 5000
	bulkConcurrency = 4
	bulkBudget      = 25 * time.Second
)

// activateMany activates each username (deduplicated, case-insensitively).
// With skipEnrolled, users whose enrollment is active or frozen are left
// alone: a group or a CSV re-run does not mail people already enrolled.
func (o *adminOps) activateMany(ctx context.Context, actor string, names []string, skipEnrolled bool) []activationRow {
	names = dedupe(names)
	rows := make([]activationRow, len(names))
	ctx, cancel := context.WithTimeout(ctx, bulkBudget)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, bulkConcurrency)
	for i, name := range names {
		rows[i].Username = name
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			rows[i].setProblem("not_attempted", "admin.act.not_attempted", ctx.Err())
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			rows[i] = o.activateOne(ctx, actor, name, skipEnrolled)
		})
	}
	wg.Wait()
	return rows
}

func (o *adminOps) activateOne(ctx context.Context, actor, name string, skipEnrolled bool) activationRow {
	row := activationRow{Username: name}
	if ctx.Err() != nil {
		row.setProblem("not_attempted", "admin.act.not_attempted", ctx.Err())
		return row
	}
	if skipEnrolled {
		e, err := o.store.Enrollment(ctx, name)
		if err == nil && (e.State == enroll.StateActive || e.State == enroll.StateFrozen) {
			row.Username = e.Username
			row.setProblem("already_enrolled", "admin.act.already_enrolled", nil)
			return row
		}
		// A link sent before and still valid is left alone, so running a
		// bulk activation again (after a time limit, say) mails only the
		// rest and does not void the links already in people's inboxes.
		if a, err := o.store.ActivationByUser(ctx, name); err == nil && !a.Expired(o.now()) && a.CreatedBy != "" &&
			!strings.HasPrefix(a.CreatedBy, "self") {
			row.Username, row.Mail, row.Expiry = a.Username, a.Mail, a.ExpiresAt
			row.setProblem("already_activated", "admin.act.already_activated", nil)
			return row
		}
	}
	res, err := o.svc.Activate(ctx, name, actor)
	var refused *directory.RefusedError
	switch {
	case errors.As(err, &refused): // the reason, per user: "jdoe is a member of Domain Admins: ..."
		row.setProblem("no_self_service", "admin.err.no_self_service."+string(refused.Reason), err)
		row.Problem.Args = map[string]string{"username": refused.Username, "group": refused.Group}
		return row
	case err != nil:
		code, key := activationProblem(err)
		if code == "not_found" {
			code, key = o.whyNotFound(ctx, name)
		}
		row.setProblem(code, key, err)
		return row
	}
	row.Username, row.OK, row.Mail, row.Expiry = res.Username, true, res.Mail, res.ExpiresAt
	return row
}

func (r *activationRow) setProblem(code, key string, err error) {
	r.OK, r.Code, r.Problem = false, code, &templates.Msg{Key: key}
	r.Error = code
	if err != nil {
		r.Error = err.Error()
	}
}

// whyNotFound tells a disabled or expired account (which user_filter
// leaves out) from one that is not in the directory at all.
func (o *adminOps) whyNotFound(ctx context.Context, name string) (code, key string) {
	u, err := o.dir.AccountState(ctx, name)
	switch {
	case err != nil:
		return "not_found", "admin.act.not_found"
	case u.Disabled:
		return "disabled", "admin.act.disabled"
	case u.Expired:
		return "account_expired", "admin.act.expired"
	}
	return "outside_filter", "admin.act.outside_filter"
}

// activationProblem maps an activation error to its stable code and text.
func activationProblem(err error) (code, key string) {
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return "not_found", "admin.act.not_found"
	case errors.Is(err, enroll.ErrNoMail):
		return "no_mail", "admin.act.no_mail"
	case errors.Is(err, enroll.ErrMailOff):
		return "mail_off", "admin.act.mail_off"
	case directoryDown(err):
		return "directory_unavailable", "admin.err.directory"
	}
	return "error", "admin.act.error"
}

func dedupe(names []string) []string {
	seen := make(map[string]bool, len(names))
	var out []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		k := strings.ToLower(n)
		if n == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, n)
	}
	return out
}

// usernames returns the usernames of users.
func usernames(users []directory.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Username
	}
	return out
}

// errTooMany: a bulk activation larger than maxBulk.
var errTooMany = fmt.Errorf("more than %d users in one activation: split it", maxBulk)

// csvUsernameHeaders are first-row cells taken as a header, not a user.
var csvUsernameHeaders = []string{"username", "user", "samaccountname", "uid", "login", "utilisateur", "identifiant"}

// CSVError says which line of an uploaded CSV is wrong.
type CSVError struct {
	Line int
	Err  error
}

func (e *CSVError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *CSVError) Unwrap() error { return e.Err }

// parseUsernameCSV reads usernames from the first column of a CSV (comma
// or semicolon separated, as spreadsheets export it): a header row, blank
// lines and lines starting with # are skipped.
func parseUsernameCSV(r io.Reader) ([]string, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		_, _ = br.Discard(3) // Excel's UTF-8 byte order mark
	}
	data, err := io.ReadAll(br)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(data) {
		return nil, errors.New("the file is not UTF-8 text: save it as CSV UTF-8")
	}
	cr := csv.NewReader(strings.NewReader(string(data)))
	cr.FieldsPerRecord, cr.Comment, cr.LazyQuotes, cr.ReuseRecord = -1, '#', true, true
	var names []string
	for row := 0; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, &CSVError{Line: line, Err: err}
		}
		// The first column, also when a spreadsheet used ; or tabs.
		name, _, _ := strings.Cut(rec[0], ";")
		name, _, _ = strings.Cut(name, "\t")
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if row == 0 && slices.Contains(csvUsernameHeaders, strings.ToLower(name)) {
			continue
		}
		if len(name) > 256 || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return nil, &CSVError{Line: line, Err: errors.New("not a username")}
		}
		if names = append(names, name); len(names) > maxBulk {
			return nil, errTooMany
		}
	}
	if len(names) == 0 {
		return nil, errors.New("no username found: put one username per line, in the first column")
	}
	return names, nil
}

// stateInvited is the listed state of a user with a pending activation
// link and no enrollment in force: activated, the link sent, not enrolled
// yet. It is not a stored enrollment state; the activation is the record.
const stateInvited enroll.State = "invited"

// listStates are the states the enrollments list filters by.
var listStates = []enroll.State{enroll.StateActive, stateInvited, enroll.StatePending, enroll.StateFrozen, enroll.StateDeactivated}

// validListState reports whether st is one the list can filter by.
func validListState(st enroll.State) bool { return st == stateInvited || st.Valid() }

// enrollmentFilter selects enrollments for the list.
type enrollmentFilter struct {
	State enroll.State
	Query string // part of the username or phone
}

// listedEnrollment is one user of the enrollments list: an enrollment, a
// pending activation (Invite), or both (an enrolled user sent a new link).
type listedEnrollment struct {
	enroll.Enrollment                    // Username always set; the rest zero for a user only invited
	State             enroll.State       // shown: the enrollment's, or stateInvited
	Invite            *enroll.Activation // the pending activation, if any
}

// listEnrollments lists enrollments and pending activations by username:
// a user whose enrollment is not in force (none, pending, deactivated) but
// who has an activation link is listed as invited.
func (o *adminOps) listEnrollments(ctx context.Context, f enrollmentFilter) ([]listedEnrollment, error) {
	all, err := o.store.Enrollments(ctx)
	if err != nil {
		return nil, err
	}
	acts, err := o.store.Activations(ctx)
	if err != nil {
		return nil, err
	}
	invites := make(map[string]*enroll.Activation, len(acts))
	for i := range acts {
		invites[strings.ToLower(acts[i].Username)] = &acts[i]
	}
	list := make([]listedEnrollment, 0, len(all)+len(acts))
	for _, e := range all {
		l := listedEnrollment{Enrollment: e, State: e.State}
		if a := invites[strings.ToLower(e.Username)]; a != nil {
			delete(invites, strings.ToLower(e.Username))
			l.Invite = a
			if e.State != enroll.StateActive && e.State != enroll.StateFrozen {
				l.State = stateInvited
			}
		}
		list = append(list, l)
	}
	for _, a := range invites {
		list = append(list, listedEnrollment{Enrollment: enroll.Enrollment{Username: a.Username, Mail: a.Mail,
			Language: a.Language, CreatedAt: a.CreatedAt, UpdatedAt: a.CreatedAt}, State: stateInvited, Invite: a})
	}
	slices.SortFunc(list, func(a, b listedEnrollment) int {
		return strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username))
	})
	q := strings.ToLower(strings.TrimSpace(f.Query))
	return slices.DeleteFunc(list, func(e listedEnrollment) bool {
		if f.State != "" && e.State != f.State {
			return true
		}
		return q != "" && !strings.Contains(strings.ToLower(e.Username), q) && !strings.Contains(e.Phone, q)
	}), nil
}

// lockedRow is one account locked right now.
type lockedRow struct {
	User  directory.User
	State enroll.State // "" when not enrolled
}

func (o *adminOps) locked(ctx context.Context) ([]lockedRow, error) {
	users, err := o.dir.LockedUsers(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]lockedRow, len(users))
	for i, u := range users {
		rows[i].User = u
		if e, err := o.store.Enrollment(ctx, u.Username); err == nil {
			rows[i].State = e.State
		}
	}
	return rows, nil
}

// maxAuditExport bounds one audit export or API page.
const maxAuditExport = 100000
