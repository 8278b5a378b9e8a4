package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	twilio "github.com/twilio/twilio-go/client"
	"github.com/twilio/twilio-go/twiml"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/templates"
)

// Store is what the webhook needs from durable storage.
type Store interface {
	EnrollmentByPhone(ctx context.Context, phone string) (enroll.Enrollment, error)
	PutEnrollment(ctx context.Context, e enroll.Enrollment) error
	UpdateEnrollment(ctx context.Context, username string, fn func(*enroll.Enrollment) error) error
	MarkMessage(ctx context.Context, sid string, now time.Time, ttl time.Duration) (bool, error)
	SetOptOut(ctx context.Context, phone string, optedOut bool, now time.Time) error
	OptedOut(ctx context.Context, phone string) (bool, error)
	Allow(ctx context.Context, key string, now time.Time, window time.Duration, limit int) (bool, error)
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
}

// MessageQueue is the outbox, where a RESET's new password is queued held
// and then released or canceled (webhook_password.go; outbox.Queue).
type MessageQueue interface {
	Enqueue(ctx context.Context, m enroll.OutboundMessage, body string) (uint64, error)
	Reseal(ctx context.Context, id uint64, body string) error
	Release(ctx context.Context, id uint64) error
	Cancel(ctx context.Context, id uint64, why string) error
}

// Directory is what the webhook needs from AD or OpenLDAP.
type Directory interface {
	FindUser(ctx context.Context, username string) (directory.User, error)
	SetPassword(ctx context.Context, u directory.User, password string, opt directory.SetPasswordOptions) error
	Unlock(ctx context.Context, u directory.User) error
}

// WebhookDirectory is what the SMS conversation needs: the Directory and,
// at each RESET and UNLOCK, whether the account may use self-service
// (privileged accounts may not).
type WebhookDirectory interface {
	Directory
	directory.SelfServiceChecker
}

// PasswordGenerator makes passwords that meet the directory's policy.
type PasswordGenerator interface {
	Generate(u directory.User) (string, error)
}

// Catalog renders localised message texts.
type Catalog interface {
	Text(lang, key string, args map[string]string) string
}

// Settings are the webhook's knobs, taken from the configuration.
type Settings struct {
	PublicURL        string // the URL Twilio signs, without trailing slash
	AuthToken        string // Twilio auth token (signing key)
	DefaultLanguage  string // for senders without an enrollment
	MaxResetsPerHour int    // reset.max_per_hour, per phone number
	Password         directory.SetPasswordOptions
	// SMSPasswordTTL (password.sms_password_ttl): a texted password still
	// unused after it is re-randomised (SMSExpiry); 0 = never. Only with
	// Password.MustChange, which is how "unused" is known.
	SMSPasswordTTL time.Duration
	MessageTTL     time.Duration // how long a MessageSid is remembered (default 7 days)
	ReplyBudget    time.Duration // all directory work must end by then (default 12 s; Twilio waits 15 s)
	PolicyRetries  int           // new passwords tried when the directory refuses one (default 3)
	// RequireAppCode: RESET must carry the current authenticator code
	// (reset.require_app_code); Secrets opens the enrolled TOTP secrets.
	RequireAppCode bool
	Secrets        SecretOpener
	// NotMe, when set, emails the admins after a NOT ME (AdminAlerts).
	NotMe NotMeNotifier
	// ResetMail, when set, emails the user after each SMS reset.
	ResetMail ResetNotifier
	// Carrier is the carrier risk check before a password is texted
	// (sms.lookup; carrier.go); its zero value checks nothing.
	Carrier CarrierCheck
	// SMSBudget, when set, admits every reply before it is sent: a TwiML
	// reply is an SMS Twilio sends and bills (webhook_reply.go).
	SMSBudget SendBudget
	// Outbox queues the new password's SMS (webhook_password.go). Without
	// it no RESET can be done.
	Outbox MessageQueue
}

// StoreGate says whether the store answers (web.StoreGate): while it does
// not, the webhook does nothing but tell the sender to try again later.
type StoreGate interface {
	Available() bool
	// Observe is told every store error; enroll.ErrUnavailable closes
	// the gate until the store answers again.
	Observe(err error)
}

// openGate is the gate of a webhook given none: always open.
type openGate struct{}

func (openGate) Available() bool { return true }
func (openGate) Observe(error)   {}

// SecretOpener opens secrets sealed in the store (enroll.Sealer).
type SecretOpener interface {
	Open(sealed []byte, purpose string) ([]byte, error)
}

// Webhook handles POST /sms/twilio.
type Webhook struct {
	store     Store
	dir       WebhookDirectory
	gen       PasswordGenerator
	msgs      Catalog
	log       *slog.Logger
	set       Settings
	validator twilio.RequestValidator
	now       func() time.Time
	gate      StoreGate // openGate when none: a store outage is seen call by call

	background sync.WaitGroup // reset notices being mailed
}

// WebhookDeps are what the webhook talks to. Directory and Generator may
// be nil for a webhook that never reaches an enrolled command (tests);
// Log may be nil.
type WebhookDeps struct {
	Store     Store
	Directory WebhookDirectory
	Generator PasswordGenerator
	Catalog   Catalog
	Log       *slog.Logger
	// Gate, when set, is asked before anything is done (nil: the store is
	// assumed to answer until a call says otherwise).
	Gate StoreGate
}

// NewWebhook wires the webhook.
func NewWebhook(s Settings, d WebhookDeps) *Webhook {
	log := d.Log
	if s.MessageTTL <= 0 {
		s.MessageTTL = 7 * 24 * time.Hour
	}
	if s.ReplyBudget <= 0 {
		s.ReplyBudget = 12 * time.Second
	}
	if s.PolicyRetries <= 0 {
		s.PolicyRetries = 3
	}
	if s.MaxResetsPerHour <= 0 {
		s.MaxResetsPerHour = 3
	}
	if s.DefaultLanguage == "" {
		s.DefaultLanguage = templates.DefaultLanguage
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.PublicURL = strings.TrimRight(s.PublicURL, "/")
	if d.Gate == nil {
		d.Gate = openGate{}
	}
	return &Webhook{store: d.Store, dir: d.Directory, gen: d.Generator, msgs: d.Catalog, log: log, set: s,
		validator: twilio.NewRequestValidator(s.AuthToken), now: time.Now, gate: d.Gate}
}

// maxWebhookBody bounds a webhook form; Twilio's are a few hundred bytes.
const maxWebhookBody = 64 << 10

var messageSidRe = regexp.MustCompile(`^(SM|MM)[0-9a-fA-F]{32}$`)

// inbound is one parsed, authenticated webhook request.
type inbound struct {
	sid, from, to, body string
	// optOutType is Twilio's OptOutType (STOP, START or HELP), sent with
	// Advanced Opt-Out: Twilio has already answered that keyword.
	optOutType string
	reply      *replyMeta // what the reply costs and carries
}

func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if !AcceptTwilioPost(rw, r, w.validator, w.set.PublicURL, w.log, "webhook") {
		return
	}
	in := inbound{sid: r.PostForm.Get("MessageSid"), from: r.PostForm.Get("From"),
		to: r.PostForm.Get("To"), body: r.PostForm.Get("Body"), optOutType: r.PostForm.Get("OptOutType"), reply: &replyMeta{}}
	if !messageSidRe.MatchString(in.sid) || in.from == "" {
		http.Error(rw, "MessageSid and From are required", http.StatusBadRequest)
		return
	}
	// The reply must leave before Twilio's 15 s timeout, whatever the directory does.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), w.set.ReplyBudget)
	defer cancel()
	if !w.gate.Available() {
		w.storeDown(ctx, rw, in, nil)
		return
	}
	reply, err := w.handle(ctx, in)
	if err != nil {
		// Only the store can fail here; without it nothing is safe to do.
		w.refundReply(ctx, in)
		if errors.Is(err, enroll.ErrUnavailable) {
			w.gate.Observe(err)
			w.storeDown(ctx, rw, in, err)
			return
		}
		w.log.ErrorContext(ctx, "webhook failed", "err", err)
		http.Error(rw, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	writeTwiML(rw, w.admitReply(ctx, in, reply))
}

// storeDown answers a message that came while the store does not answer:
// nothing was done (no MessageSid recorded, no limit counted, no
// password set), and the sender is told once to try again in a few
// minutes, in the language of the command word sent (the enrollment's
// cannot be read), else the default. The reply is not charged to the SMS
// budgets, which live in the store too. When Twilio already answered the
// keyword (Advanced Opt-Out) nothing is added.
func (w *Webhook) storeDown(ctx context.Context, rw http.ResponseWriter, in inbound, err error) {
	w.log.WarnContext(ctx, "webhook: the store is unavailable; the sender is told to try again later",
		"message_sid", in.sid, "err", err)
	if in.optOutType != "" {
		writeTwiML(rw, "")
		return
	}
	lang := CommandLanguage(in.body)
	if lang == "" {
		lang = w.set.DefaultLanguage
	}
	writeTwiML(rw, w.msgs.Text(lang, "sms.store_down", nil))
}

// writeTwiML answers with a <Response>, holding one <Message> when text is
// set. The text never holds a secret (webhook_password.go).
func writeTwiML(rw http.ResponseWriter, text string) {
	var verbs []twiml.Element
	if text != "" {
		verbs = append(verbs, &twiml.MessagingMessage{Body: text})
	}
	doc, err := twiml.Messages(verbs)
	if err != nil {
		http.Error(rw, "could not render reply", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/xml; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	_, _ = rw.Write([]byte(doc))
}
