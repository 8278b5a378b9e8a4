// Package enroll owns the enrollment model (username → verified phone,
// language, state), phone number normalisation, the audit trail and their
// durable storage in bbolt, together with the store conformance suite
// (enroll/storetest) that every Store implementation must pass.
//
// It must not talk to the directory or send messages; callers do that and
// record the outcome here.
package enroll
