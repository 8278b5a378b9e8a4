package twilio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway"
)

// StatusStore is what delivery reports need from the outbox.
type StatusStore interface {
	MessageByProviderID(ctx context.Context, providerID string) (enroll.OutboundMessage, error)
	UpdateMessage(ctx context.Context, id uint64, fn func(*enroll.OutboundMessage) error) error
}

// StatusSettings configure the delivery-report endpoint.
type StatusSettings struct {
	PublicURL string // the URL Twilio signs, without trailing slash
	AuthToken string // Twilio auth token (signing key)
	// OnFinal, when set, is called after a message's status became
	// delivered, undelivered or failed, with the message as stored: the
	// place to redact a password at the provider or offer a voice call. It
	// runs before Twilio gets its answer, so slow work belongs in a
	// goroutine of its own.
	OnFinal func(ctx context.Context, m enroll.OutboundMessage)
	// Redactions, when set, queues the redaction at the provider of every
	// SMS that carried a secret, once its status is final (redact.go);
	// Wake, when set, then wakes the outbox.
	Redactions RedactionQueue
	Wake       func()
	// Audit, when set, records the reports the admins must know of
	// (status_alert.go); Alerts then mails them carrier filtering, at most
	// once per code and hour when Throttle is set.
	Audit    Auditor
	Alerts   CarrierFilterNotifier
	Throttle AlertThrottle
}

// Auditor appends to the audit trail (enroll.Store).
type Auditor interface {
	AppendAudit(ctx context.Context, ev enroll.Event) (uint64, error)
}

// RedactionQueue queues redactions at the provider (outbox.Queue).
type RedactionQueue interface {
	EnqueueRedaction(ctx context.Context, sid, purpose, username string, now time.Time) (uint64, bool, error)
}

// StatusHandler handles POST /sms/twilio/status: Twilio's signed delivery
// reports for the messages and calls the outbox sent.
type StatusHandler struct {
	store     StatusStore
	log       *slog.Logger
	set       StatusSettings
	validator twclient.RequestValidator
	now       func() time.Time

	background sync.WaitGroup // admin mails being sent (status_alert.go)
}

// NewStatusHandler wires the endpoint; log may be nil.
func NewStatusHandler(s StatusSettings, store StatusStore, log *slog.Logger) *StatusHandler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.PublicURL = strings.TrimRight(s.PublicURL, "/")
	return &StatusHandler{store: store, log: log, set: s,
		validator: twclient.NewRequestValidator(s.AuthToken), now: time.Now}
}

var providerSIDRe = regexp.MustCompile(`^(SM|MM|CA)[0-9a-fA-F]{32}$`)

// Twilio statuses that end a message's or call's life, as outbox statuses.
// Everything else (queued, accepted, sending, sent, initiated, ringing,
// in-progress, ...) says no more than the "sent" the outbox already holds.
var finalReports = map[string]string{
	// messages
	"delivered":   enroll.StatusDelivered,
	"read":        enroll.StatusDelivered,
	"undelivered": enroll.StatusUndelivered,
	"failed":      enroll.StatusFailed,
	"canceled":    enroll.StatusFailed,
	// calls ("failed" and "canceled" as above)
	"completed": enroll.StatusDelivered,
	"busy":      enroll.StatusUndelivered,
	"no-answer": enroll.StatusUndelivered,
}

// errUnchanged leaves a message as it is inside UpdateMessage.
var errUnchanged = errors.New("twilio: message unchanged")

func (h *StatusHandler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if !gateway.AcceptTwilioPost(rw, r, h.validator, h.set.PublicURL, h.log, "status callback") {
		return
	}
	f := r.PostForm
	sid, report := f.Get("MessageSid"), f.Get("MessageStatus")
	if sid == "" {
		sid, report = f.Get("CallSid"), f.Get("CallStatus")
	}
	if report == "" {
		report = f.Get("SmsStatus")
	}
	if !providerSIDRe.MatchString(sid) || report == "" {
		http.Error(rw, "MessageSid and MessageStatus (or CallSid and CallStatus) are required", http.StatusBadRequest)
		return
	}
	code, _ := strconv.Atoi(f.Get("ErrorCode"))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	known, err := h.apply(ctx, sid, report, code, r.URL.Query().Get("redact"))
	if err != nil {
		h.log.ErrorContext(ctx, "delivery report not recorded", "provider_id", sid, "err", err)
		http.Error(rw, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if !known {
		// Not ours, or older than the outbox: nothing to do, and nothing to
		// tell Twilio either.
		rw.WriteHeader(http.StatusOK)
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

// apply records report for the message with provider ID sid; known is
// false when no message has that ID. redact is the ?redact= of the
// callback URL: a webhook reply that carried a secret of that kind.
func (h *StatusHandler) apply(ctx context.Context, sid, report string, code int, redact string) (known bool, err error) {
	next, final := finalReports[report]
	m, err := h.store.MessageByProviderID(ctx, sid)
	if errors.Is(err, enroll.ErrNotFound) {
		if redact == redactPassword || redact == redactCode {
			// A reply of the webhook: not in the outbox, known by its URL.
			if final {
				return true, h.queueRedaction(ctx, sid, redact, "")
			}
			return true, nil
		}
		h.log.InfoContext(ctx, "delivery report for an unknown message", "provider_id", sid, "report", report)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !final {
		return true, nil
	}
	secret := m.Kind == enroll.KindSMS && secretPurposes[m.Purpose]
	var stored enroll.OutboundMessage
	err = h.store.UpdateMessage(ctx, m.ID, func(m *enroll.OutboundMessage) error {
		if m.ProviderID != sid || !reportChanges(m.Status, next) {
			return errUnchanged
		}
		m.Status = next
		m.UpdatedAt = h.now()
		if next == enroll.StatusDelivered {
			m.ErrorCode, m.LastError = 0, ""
		} else {
			m.ErrorCode = code
			m.LastError = fmt.Sprintf("delivery report: %s", report)
			if code != 0 {
				m.LastError += fmt.Sprintf(" (error %d)", code)
			}
		}
		stored = *m
		return nil
	})
	if errors.Is(err, errUnchanged) {
		if secret { // queued before, unless that failed: the store keeps one
			return true, h.queueRedaction(ctx, sid, m.Purpose, m.Username)
		}
		return true, nil
	}
	if err != nil {
		return true, err
	}
	h.log.InfoContext(ctx, "delivery report", "message_id", stored.ID, "provider_id", sid,
		"kind", stored.Kind, "purpose", stored.Purpose, "status", stored.Status, "error_code", code)
	if next != enroll.StatusDelivered {
		h.alertDelivery(ctx, stored, code)
	}
	if secret {
		if err := h.queueRedaction(ctx, sid, m.Purpose, m.Username); err != nil {
			return true, err
		}
	}
	if h.set.OnFinal != nil {
		h.set.OnFinal(ctx, stored)
	}
	return true, nil
}

// reportChanges says whether a final report moves a message on. Reports
// come out of order and twice: "delivered" is never taken back, and a
// failure is overridden only by a late "delivered".
func reportChanges(current, next string) bool {
	switch current {
	case enroll.StatusSent:
		return true
	case enroll.StatusUndelivered, enroll.StatusFailed:
		return next == enroll.StatusDelivered
	default:
		return false
	}
}

// queueRedaction queues the redaction of sid, once however often it is
// asked.
func (h *StatusHandler) queueRedaction(ctx context.Context, sid, purpose, username string) error {
	if h.set.Redactions == nil {
		return nil
	}
	id, queued, err := h.set.Redactions.EnqueueRedaction(ctx, sid, purpose, username, h.now())
	if err != nil {
		return fmt.Errorf("queue the redaction: %w", err)
	}
	if queued {
		h.log.InfoContext(ctx, "redaction queued", "message_id", id, "provider_id", sid, "purpose", purpose)
	}
	return nil
}
