package outbox

// Every body the outbox keeps is sealed here (enroll.Sealer), and only
// here: an SMS or call text when it is queued (Enqueue), a held message's
// new or wiped body (Queue.Reseal, Queue.Cancel), a mail's subject and
// bodies (MailQueue.Send). The workers open them just before sending.

// SealPurpose is the Sealer purpose of queued SMS and call bodies: what
// the demo phone and `replyreset outbox` open to show them.
const SealPurpose = "outbox"

// mailSealPurpose is the Sealer purpose of queued mails.
const mailSealPurpose = "mail"

// BodySealer seals message bodies (enroll.Sealer).
type BodySealer interface {
	Seal(plain []byte, purpose string) []byte
}

// BodyOpener opens sealed message bodies (enroll.Sealer).
type BodyOpener interface {
	Open(sealed []byte, purpose string) ([]byte, error)
}

// Sealer seals and opens bodies (enroll.Sealer).
type Sealer interface {
	BodySealer
	BodyOpener
}

func sealBody(s BodySealer, body string) []byte { return s.Seal([]byte(body), SealPurpose) }
