package twilio

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/gateway/outbox"
)

// DemoPhone plays the employees' phones and Twilio for `replyreset demo`.
// A text typed on the simulator is posted to the gateway's own webhook as
// Twilio would post it, signed with the demo's auth token, so the real
// path runs: signature check, conversation, directory, audit. The TwiML
// reply and the messages the outbox provider kept (codes, new passwords,
// lockout alerts) make up each phone's conversation.
//
// The typed texts and the replies live in memory only; the outbox's bodies
// stay sealed in the data file and are opened here, for display, like the
// phone would show them.
type DemoPhone struct {
	outbox     DemoOutbox
	sealer     *enroll.Sealer
	postURL    string // where the webhook listens (the demo's listen address)
	signedURL  string // public_url + /sms/twilio: what Twilio signs
	authToken  string
	number     string // the company number the employees text
	client     *http.Client
	now        func() time.Time
	mu         sync.Mutex
	typed      map[string][]DemoMessage // phone → texts typed and their replies
	maxHistory int
}

// DemoOutbox lists the messages the outbox provider kept.
type DemoOutbox interface {
	Messages(ctx context.Context, f enroll.OutboxFilter) ([]enroll.OutboundMessage, error)
}

// DemoMessage is one bubble of a simulated phone's conversation.
type DemoMessage struct {
	Time     time.Time `json:"time"`
	Incoming bool      `json:"incoming"` // sent to the phone (by the gateway)
	Kind     string    `json:"kind"`     // sms | call
	Body     string    `json:"body"`
	Status   string    `json:"status,omitempty"`
}

// DemoPhoneOptions configure a DemoPhone.
type DemoPhoneOptions struct {
	PostURL   string // e.g. http://127.0.0.1:8080/sms/twilio
	PublicURL string // the configured public_url
	AuthToken string
	Number    string // the company number, E.164
	Now       func() time.Time
}

// NewDemoPhone returns a simulator posting to opt.PostURL.
func NewDemoPhone(outbox DemoOutbox, sealer *enroll.Sealer, opt DemoPhoneOptions) *DemoPhone {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &DemoPhone{outbox: outbox, sealer: sealer, postURL: opt.PostURL,
		signedURL: strings.TrimRight(opt.PublicURL, "/") + "/sms/twilio", authToken: opt.AuthToken, number: opt.Number,
		client: &http.Client{Timeout: 20 * time.Second}, now: opt.Now, typed: make(map[string][]DemoMessage), maxHistory: 200}
}

// maxDemoText bounds a typed text: a few SMS segments.
const maxDemoText = 480

// Send posts body as an SMS from phone (E.164) to the gateway and returns
// the gateway's reply ("" when it answered nothing, as after STOP).
func (d *DemoPhone) Send(ctx context.Context, phone, body string) (string, error) {
	if !utf8.ValidString(body) || strings.TrimSpace(body) == "" {
		return "", fmt.Errorf("%w: type a message", enroll.ErrInvalid)
	}
	if len(body) > maxDemoText {
		return "", fmt.Errorf("%w: at most %d bytes", enroll.ErrInvalid, maxDemoText)
	}
	form := url.Values{
		"MessageSid": {newSID("SM")},
		"AccountSid": {"AC" + strings.Repeat("0", 32)},
		"From":       {phone},
		"To":         {d.number},
		"Body":       {body},
		"NumMedia":   {"0"},
	}
	d.record(phone, DemoMessage{Time: d.now(), Kind: enroll.KindSMS, Body: body})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.postURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", signTwilio(d.authToken, d.signedURL, form))
	resp, err := d.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("demo phone: post to the webhook: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("demo phone: read the reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("demo phone: the webhook answered %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	reply, err := twimlText(data)
	if err != nil {
		return "", fmt.Errorf("demo phone: %w", err)
	}
	if reply != "" {
		d.record(phone, DemoMessage{Time: d.now(), Incoming: true, Kind: enroll.KindSMS, Body: reply, Status: "reply"})
	}
	return reply, nil
}

func (d *DemoPhone) record(phone string, m DemoMessage) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := append(d.typed[phone], m)
	if len(h) > d.maxHistory {
		h = h[len(h)-d.maxHistory:]
	}
	d.typed[phone] = h
}

// Conversation returns phone's messages, oldest first: the texts typed,
// the replies, and what the outbox sent to it (SMS and calls).
func (d *DemoPhone) Conversation(ctx context.Context, phone string) ([]DemoMessage, error) {
	sent, err := d.outbox.Messages(ctx, enroll.OutboxFilter{To: phone, Limit: d.maxHistory})
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	out := slices.Clone(d.typed[phone])
	d.mu.Unlock()
	for _, m := range sent {
		if m.Status == enroll.StatusHeld || m.Status == enroll.StatusCanceled {
			continue // never released: not on its way to the phone
		}
		body := "(unreadable)"
		if plain, err := d.sealer.Open(m.Sealed, outbox.SealPurpose); err == nil {
			body = string(plain)
		}
		out = append(out, DemoMessage{Time: m.CreatedAt, Incoming: true, Kind: m.Kind, Body: body, Status: m.Status})
	}
	slices.SortStableFunc(out, func(a, b DemoMessage) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// twimlText returns the text of the <Message> verbs of a TwiML answer.
func twimlText(doc []byte) (string, error) {
	var r struct {
		XMLName  xml.Name `xml:"Response"`
		Messages []struct {
			Body string `xml:",chardata"`
			Text string `xml:"Body"`
		} `xml:"Message"`
	}
	if err := xml.Unmarshal(doc, &r); err != nil {
		return "", fmt.Errorf("the reply is not TwiML: %w", err)
	}
	var parts []string
	for _, m := range r.Messages {
		if t := strings.TrimSpace(m.Body + m.Text); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "\n"), nil
}

// signTwilio is X-Twilio-Signature as Twilio computes it: base64 of
// HMAC-SHA1 keyed with the auth token over the URL and every POST key and
// value, keys sorted. (gateway/twiliotest has its own copy on purpose:
// tests must not trust the code under test.)
func signTwilio(authToken, fullURL string, form url.Values) string {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range form {
			if !yield(k) {
				return
			}
		}
	})
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(fullURL))
	for _, k := range keys {
		mac.Write([]byte(k + form.Get(k)))
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func newSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
