package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
)

// handle turns one authenticated inbound SMS into a reply text ("" = no
// reply). It returns an error only when the store fails, in which case
// nothing was done.
func (w *Webhook) handle(ctx context.Context, in inbound) (string, error) {
	now := w.now()
	first, err := w.store.MarkMessage(ctx, in.sid, now, w.set.MessageTTL)
	if err != nil {
		return "", fmt.Errorf("record MessageSid: %w", err)
	}
	if !first {
		w.log.InfoContext(ctx, "webhook replay ignored", "message_sid", in.sid)
		return "", nil
	}
	cmd := ParseCommand(in.body)
	// With Twilio's Advanced Opt-Out, Twilio matched the keyword (its list
	// may hold words of its own) and already replied: record what it
	// means, reply nothing.
	twilioReplied := false
	if kind, ok := optOutTypes[strings.ToUpper(strings.TrimSpace(in.optOutType))]; ok {
		cmd, twilioReplied = Command{Kind: kind}, true
	}
	phone, phoneErr := enroll.NormalizePhone(in.from, "")
	if phoneErr != nil {
		// Short codes and alphanumeric senders can enroll nothing.
		if twilioReplied {
			return "", nil
		}
		return w.msgs.Text(w.set.DefaultLanguage, "sms.generic", nil), nil
	}
	c := &conversation{w: w, phone: phone, sid: in.sid, cmd: cmd, now: now, lang: w.set.DefaultLanguage, reply: in.reply}

	optedOut, err := w.store.OptedOut(ctx, phone)
	if err != nil {
		return "", fmt.Errorf("read opt-out: %w", err)
	}
	if optedOut && cmd.Kind != Start {
		return "", nil // carrier rules: nothing after STOP until START
	}
	switch cmd.Kind {
	case Stop, Start:
		reply, err := c.optOut(ctx, cmd.Kind == Stop)
		if twilioReplied {
			return "", err
		}
		return reply, err
	case Help:
		if twilioReplied {
			return "", nil
		}
		c.loadLanguage(ctx)
		return c.text("sms.help", nil), nil
	case Unknown:
		c.loadLanguage(ctx)
		return c.text("sms.generic", nil), nil
	}
	return c.enrolledCommand(ctx)
}

// conversation is the state of one inbound message being handled.
type conversation struct {
	w     *Webhook
	phone string
	sid   string
	cmd   Command
	now   time.Time
	lang  string
	enr   *enroll.Enrollment
	reply *replyMeta // budget and secrecy of the reply (webhook_reply.go)
}

// text renders a reply. A reply never carries a secret: a password goes
// through the outbox (webhook_password.go).
func (c *conversation) text(key string, args map[string]string) string {
	if args["password"] != "" || args["code"] != "" {
		panic("gateway: a secret in a webhook reply (" + key + ")")
	}
	return c.w.msgs.Text(c.lang, key, args)
}

// loadLanguage uses the sender's enrollment language when there is one.
func (c *conversation) loadLanguage(ctx context.Context) {
	e, err := c.w.store.EnrollmentByPhone(ctx, c.phone)
	if err == nil {
		c.enr = &e
		if e.Language != "" {
			c.lang = e.Language
		}
	}
}

func (c *conversation) audit(ctx context.Context, action, username, outcome, detail string) {
	ev := enroll.Event{Time: c.now, Actor: "sms:" + c.phone, Action: action, Username: username,
		Phone: c.phone, Outcome: outcome, Detail: detail}
	if _, err := c.w.store.AppendAudit(ctx, ev); err != nil {
		c.w.log.ErrorContext(ctx, "audit write failed", "action", action, "outcome", outcome, "err", err)
	}
}

// optOutTypes are the values of Twilio's OptOutType field.
var optOutTypes = map[string]CommandKind{"STOP": Stop, "START": Start, "HELP": Help}

// optOut records a STOP (out) or a START and returns its reply.
func (c *conversation) optOut(ctx context.Context, out bool) (string, error) {
	key := "sms.start"
	if out {
		key = "sms.stop"
	}
	c.loadLanguage(ctx)
	if err := c.w.store.SetOptOut(ctx, c.phone, out, c.now); err != nil {
		return "", fmt.Errorf("record opt-out: %w", err)
	}
	username := ""
	if c.enr != nil {
		username = c.enr.Username
	}
	c.audit(ctx, c.cmd.Kind.String(), username, "ok", "")
	return c.text(key, nil), nil
}

// enrolledCommand handles the commands that need an active enrollment.
// Unknown and inactive senders get the same generic reply as an unknown word.
func (c *conversation) enrolledCommand(ctx context.Context) (string, error) {
	e, err := c.w.store.EnrollmentByPhone(ctx, c.phone)
	if errors.Is(err, enroll.ErrNotFound) {
		c.audit(ctx, c.cmd.Kind.String(), "", "unknown_sender", "")
		return c.text("sms.generic", nil), nil
	}
	if err != nil {
		return "", fmt.Errorf("look up enrollment: %w", err)
	}
	c.enr = &e
	if e.Language != "" {
		c.lang = e.Language
	}
	switch e.State {
	case enroll.StateActive:
	case enroll.StateFrozen:
		c.audit(ctx, c.cmd.Kind.String(), e.Username, "frozen", "")
		return c.text("sms.frozen", nil), nil
	default:
		c.audit(ctx, c.cmd.Kind.String(), e.Username, "not_active", string(e.State))
		return c.text("sms.generic", nil), nil
	}
	switch c.cmd.Kind {
	case Reset:
		return c.reset(ctx)
	case Unlock:
		return c.unlock(ctx)
	case Status:
		return c.status(ctx)
	case NotMe:
		return c.notMe(ctx)
	}
	return c.text("sms.generic", nil), nil
}

// findUser looks the enrolled user up; on failure it returns the reply.
func (c *conversation) findUser(ctx context.Context) (directory.User, string, bool) {
	u, err := c.w.dir.FindUser(ctx, c.enr.Username)
	if err != nil {
		return u, c.directoryFailure(ctx, err), false
	}
	return u, "", true
}

// directoryFailure audits a failed directory call and picks the reply.
func (c *conversation) directoryFailure(ctx context.Context, err error) string {
	action := c.cmd.Kind.String()
	if errors.Is(err, directory.ErrUnavailable) || errors.Is(err, directory.ErrTLS) || ctx.Err() != nil {
		c.audit(ctx, action, c.enr.Username, "directory_unavailable", err.Error())
		return c.text("sms.try_later", nil)
	}
	c.audit(ctx, action, c.enr.Username, "error", err.Error())
	c.w.log.ErrorContext(ctx, "directory operation failed", "action", action, "err", err)
	return c.text("sms.reset.failed", nil)
}

func (c *conversation) reset(ctx context.Context) (string, error) {
	// The authenticator code first: wrong or missing codes have their own
	// limit and do not use up the hourly resets.
	if c.w.set.RequireAppCode {
		if reply, ok, err := c.checkAppCode(ctx); err != nil || !ok {
			return reply, err
		}
	}
	ok, err := c.w.store.Allow(ctx, "reset:"+c.phone, c.now, time.Hour, c.w.set.MaxResetsPerHour)
	if err != nil {
		return "", fmt.Errorf("rate limit: %w", err)
	}
	if !ok {
		c.audit(ctx, "reset", c.enr.Username, "rate_limited", "")
		return c.text("sms.reset.rate_limited", map[string]string{"minutes": "60"}), nil
	}
	if reply, ok, err := c.carrierCheck(ctx); err != nil || !ok { // carrier.go
		return reply, err
	}
	u, reply, found := c.findUser(ctx)
	if !found {
		return reply, nil
	}
	if reply, ok := c.selfServiceAllowed(ctx, u); !ok {
		return reply, nil // no password set, nothing written
	}
	if !c.admitReply(ctx) {
		return "", nil // over an SMS budget: set no password that cannot be texted
	}
	opt := c.w.set.Password
	held := &heldPassword{c: c, u: u}
	attempts := 0
	for {
		attempts++
		var password string
		password, err = c.w.gen.Generate(u)
		if err != nil {
			held.cancel(ctx, "password generation failed")
			c.audit(ctx, "reset", u.Username, "error", "password generation: "+err.Error())
			return c.text("sms.reset.failed", nil), nil
		}
		// The message first, durably: no password is set that no queued
		// message carries.
		if err = held.hold(ctx, password); err != nil {
			held.cancel(ctx, "not queued")
			return "", fmt.Errorf("queue the new password: %w", err)
		}
		err = c.w.dir.SetPassword(ctx, u, password, opt)
		if !errors.Is(err, directory.ErrPolicy) || attempts >= c.w.set.PolicyRetries {
			break
		}
		c.w.log.WarnContext(ctx, "directory refused a generated password; trying another", "attempt", attempts, "err", err)
	}
	switch {
	case err == nil:
		c.audit(ctx, "reset", u.Username, "ok", resetDetail(opt))
	case errors.Is(err, directory.ErrPartial):
		// The new password is in force: the user must get it.
		c.audit(ctx, "reset", u.Username, "partial", err.Error())
		c.w.log.ErrorContext(ctx, "password set but a follow-up change failed", "err", err)
	case errors.Is(err, directory.ErrPolicy):
		held.cancel(ctx, "refused by the directory's password policy")
		c.audit(ctx, "reset", u.Username, "policy_rejected", fmt.Sprintf("%d generated passwords refused: %v", attempts, err))
		return c.text("sms.reset.failed", nil), nil
	default:
		held.cancel(ctx, "the password was not set")
		return c.directoryFailure(ctx, err), nil
	}
	if err := held.release(ctx); err != nil {
		// The password is set and its message stays held (never sent):
		// the user texts RESET again.
		c.audit(ctx, "reset", u.Username, "error", "password set, but its SMS could not be released")
		return "", fmt.Errorf("release the new password's SMS (message %d): %w", held.id, err)
	}
	c.scheduleExpiry(ctx, u)
	c.noticeReset(ctx, u)
	return "", nil // the password is on its way through the outbox
}

// selfServiceAllowed asks the directory, now, whether u may use
// self-service (enroll.CheckSelfService: a refusal is audited); when not,
// it returns the reply.
func (c *conversation) selfServiceAllowed(ctx context.Context, u directory.User) (string, bool) {
	action := c.cmd.Kind.String()
	err := enroll.CheckSelfService(ctx, c.w.dir, c.w.store, u, action,
		enroll.Event{Time: c.now, Actor: "sms:" + c.phone, Phone: c.phone})
	switch {
	case err == nil:
		return "", true
	case errors.Is(err, directory.ErrNoSelfService):
		return c.text("sms.no_self_service", nil), false
	}
	return c.directoryFailure(ctx, err), false
}

func resetDetail(opt directory.SetPasswordOptions) string {
	return "must_change=" + strconv.FormatBool(opt.MustChange) + " unlock=" + strconv.FormatBool(opt.Unlock)
}

func (c *conversation) unlock(ctx context.Context) (string, error) {
	u, reply, found := c.findUser(ctx)
	if !found {
		return reply, nil
	}
	if reply, ok := c.selfServiceAllowed(ctx, u); !ok {
		return reply, nil
	}
	if !u.Locked {
		c.audit(ctx, "unlock", u.Username, "not_locked", "")
		return c.text("sms.unlock.not_locked", map[string]string{"username": u.Username}), nil
	}
	if err := c.w.dir.Unlock(ctx, u); err != nil {
		return c.directoryFailure(ctx, err), nil
	}
	c.audit(ctx, "unlock", u.Username, "ok", "")
	return c.text("sms.unlock.ok", map[string]string{"username": u.Username}), nil
}

func (c *conversation) status(ctx context.Context) (string, error) {
	u, reply, found := c.findUser(ctx)
	if !found {
		return reply, nil
	}
	c.audit(ctx, "status", u.Username, "ok", "")
	return c.text("sms.status", map[string]string{"username": u.Username,
		"locked": c.yesNo(u.Locked), "must_change": c.yesNo(u.MustChange)}), nil
}

func (c *conversation) yesNo(b bool) string {
	if b {
		return c.text("word.yes", nil)
	}
	return c.text("word.no", nil)
}

// notMe freezes the enrollment: no command is accepted from this phone
// (an UNLOCK or RESET that follows is refused) until an admin looks at it.
// The account is never unlocked: a locked account stays locked. The
// admins are emailed when Settings.NotMe is set.
func (c *conversation) notMe(ctx context.Context) (string, error) {
	username := c.enr.Username
	err := c.w.store.UpdateEnrollment(ctx, username, func(e *enroll.Enrollment) error {
		if e.State != enroll.StateActive && e.State != enroll.StateFrozen {
			return nil // deactivated meanwhile: it owns no phone and takes no command
		}
		e.State, e.UpdatedAt = enroll.StateFrozen, c.now
		return nil
	})
	if err != nil && !errors.Is(err, enroll.ErrNotFound) { // deleted meanwhile: nothing left to freeze
		return "", fmt.Errorf("freeze enrollment: %w", err)
	}
	u, detail := c.notMeAccount(ctx)
	c.audit(ctx, "not_me", username, "frozen", detail)
	c.alertNotMe(ctx, u)
	return c.text("sms.notme.ok", nil), nil
}
