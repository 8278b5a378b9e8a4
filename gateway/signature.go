package gateway

import (
	"errors"
	"log/slog"
	"net/http"

	twilio "github.com/twilio/twilio-go/client"
)

// AcceptTwilioPost admits a request from Twilio: a POST whose form (at
// most maxWebhookBody bytes) parses and whose X-Twilio-Signature is valid
// for publicURL + the request URI. Otherwise it answers (405, 413, 400 or
// 403) and returns false; nothing else may then be done with the request.
// what names the endpoint in the log ("webhook", "status callback"); the
// webhook and the delivery reports (twilio.StatusHandler) use it.
func AcceptTwilioPost(rw http.ResponseWriter, r *http.Request, v twilio.RequestValidator,
	publicURL string, log *slog.Logger, what string) bool {
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	r.Body = http.MaxBytesReader(rw, r.Body, maxWebhookBody)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(rw, "request body too large", http.StatusRequestEntityTooLarge)
			return false
		}
		http.Error(rw, "malformed form body", http.StatusBadRequest)
		return false
	}
	sig := r.Header.Get("X-Twilio-Signature")
	if sig == "" || !validTwilioSignature(v, publicURL, r, sig) {
		log.WarnContext(r.Context(), what+" refused: bad or missing Twilio signature",
			"remote", r.RemoteAddr, "has_signature", sig != "")
		http.Error(rw, "forbidden", http.StatusForbidden)
		return false
	}
	return true
}

// validTwilioSignature checks sig over publicURL + request URI and the
// parsed POST parameters.
func validTwilioSignature(v twilio.RequestValidator, publicURL string, r *http.Request, sig string) bool {
	params := make(map[string]string, len(r.PostForm))
	for k, vals := range r.PostForm {
		if len(vals) != 1 {
			return false // Twilio never repeats a field; the signature scheme cannot cover it
		}
		params[k] = vals[0]
	}
	return v.Validate(publicURL+r.URL.RequestURI(), params, sig)
}
