package twilio

import (
	"context"
	"errors"
	"strings"
	"time"

	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/outbox"
)

var _ outbox.SentFinder = (*Sender)(nil)

// findSentSkew is how much earlier than the send mark a message found at
// Twilio may have been created and still count: the mark was set by the
// clock of the node that claimed the message, Twilio dates by its own.
const findSentSkew = 2 * time.Minute

// findSentPage is how many of the number's latest messages are searched:
// a send in doubt is minutes old, and one number gets few texts.
const findSentPage = 50

// errCallsUnsearchable: a call's text is inline TwiML, which Twilio does
// not list back, so a call in doubt cannot be found.
var errCallsUnsearchable = errors.New("twilio: a call cannot be looked up by what it says")

// FindSent looks among the latest messages Twilio lists for to (newest
// first) for an outbound one with exactly body created at or after since
// (less findSentSkew), and returns its SID. The outbox asks it about a
// send whose outcome was never recorded: found, the message is recorded as
// sent instead of being texted twice; not found, it was never accepted and
// is sent. Only SMS can be found.
func (s *Sender) FindSent(ctx context.Context, kind, to, body string, since time.Time) (outbox.Receipt, bool, error) {
	if kind != enroll.KindSMS {
		return outbox.Receipt{}, false, errCallsUnsearchable
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	p := &openapi.ListMessageParams{}
	p.SetTo(to)
	p.SetPageSize(findSentPage)
	p.SetLimit(findSentPage)
	api, trip := s.checkAPI(ctx)
	list, err := api.ListMessage(p)
	if err != nil {
		return outbox.Receipt{}, false, twilioSendError(err, trip.status, []string{body}, s.apiHost())
	}
	for _, m := range list {
		if m.Sid == nil || m.Body == nil || *m.Body != body ||
			(m.Direction != nil && !strings.HasPrefix(*m.Direction, "outbound")) {
			continue
		}
		if m.DateCreated != nil {
			if created, err := time.Parse(time.RFC1123Z, *m.DateCreated); err == nil && created.Before(since.Add(-findSentSkew)) {
				continue
			}
		}
		r := outbox.Receipt{ProviderID: *m.Sid}
		if m.Status != nil {
			r.Status = *m.Status
		}
		return r, true, nil
	}
	return outbox.Receipt{}, false, nil
}
