package notify

import (
	"context"
	"strconv"
	"time"

	"github.com/replyreset/replyreset/templates"
)

// SIMSwapNotice is what admins are told when a recent SIM swap blocked a
// reset.
type SIMSwapNotice struct {
	Username    string
	DisplayName string
	Phone       string    // E.164; the mail shows only its last two digits
	SwappedAt   time.Time // zero when the carrier only says "within its period"
	At          time.Time // the refused RESET
}

// NotifySIMSwap mails every admin the "sim_swap" alert.
func (a *AdminAlerts) NotifySIMSwap(ctx context.Context, n SIMSwapNotice) (int, error) {
	display := n.DisplayName
	if display == "" {
		display = n.Username
	}
	swapped := "" // the template words a swap the carrier gives no date for
	if !n.SwappedAt.IsZero() {
		swapped = templates.FormatDateTime(a.lang, n.SwappedAt.In(a.loc))
	}
	sent, _, err := a.deliver(ctx, templates.MailSIMSwap, map[string]string{
		"display_name": display,
		"username":     n.Username,
		"phone":        n.Phone, // RenderMail masks it
		"swapped":      swapped,
		"time":         templates.FormatDateTime(a.lang, n.At.In(a.loc)),
	}, nil)
	return len(sent), err
}

// CarrierFilterNotice is what the admins are told about a filtered message.
type CarrierFilterNotice struct {
	Username string
	Phone    string // E.164; the mail shows only its last two digits
	Code     int
	At       time.Time
}

// NotifyCarrierFiltered mails every admin the "carrier_filtered" alert.
func (a *AdminAlerts) NotifyCarrierFiltered(ctx context.Context, n CarrierFilterNotice) (int, error) {
	username := n.Username
	if username == "" {
		username = "-"
	}
	sent, _, err := a.deliver(ctx, templates.MailCarrierFiltered, map[string]string{
		"code":     strconv.Itoa(n.Code),
		"phone":    n.Phone, // RenderMail masks it
		"time":     templates.FormatDateTime(a.lang, n.At.In(a.loc)),
		"username": username,
	}, nil)
	return len(sent), err
}
