// Package enroll owns the enrollment domain: its model (enrollments,
// activations, outbound messages and mails, API tokens, the audit trail),
// the enrollment and admin service over it, the sealer of secrets, the
// input rules every store applies (validate.go) and the one store contract,
// Store (store.go), that the implementations under enroll/store provide and
// enroll/store/storetest checks.
//
// It holds no storage engine and reaches the directory, the mail transport
// and the store only through the small interfaces it declares.
package enroll
