// Package demodir is an in-process LDAP server that speaks the Active
// Directory dialect over the real LDAP protocol (LDAPS, and ldap:// with
// StartTLS), for `replyreset demo` and for fast tests of the product's real
// directory.Client. It is built on the server core of
// github.com/jimlambrt/gldap (connections, BER decoding, routing) with its own
// handlers and an in-memory data model: AD bind sub-codes (52e, 773, 775,
// 533, 532, 701), badPwdCount and lockoutTime under the domain lockout
// policy, the constructed msDS-User-Account-Control-Computed, unicodePwd
// resets checked against a complexity policy with Samba's diagnostics,
// uSNChanged and the RootDSE highestCommittedUSN, real filter evaluation
// (LDAP_MATCHING_RULE_IN_CHAIN and the bitwise rules included) and paged
// results.
//
// The domain always holds the built-in Administrator (may write anything),
// the service account svc-replyreset (reset, must-change and unlock on the
// users of OU=Staff and, with Options.Seed, OU=Demo Users), and the admin
// group CN=Helpdesk,OU=Groups whose member CN=Tier2 holds helpdeskadmin.
// Options.Seed adds twenty sample people in OU=Sales and OU=Engineering
// under OU=Demo Users, with SamplePassword.
//
// It listens on loopback addresses only and keeps everything in memory; it
// must never serve as a real directory. Passwords are kept as salted
// hashes and never logged. Limits: no SASL, no password history, and the
// LDAP operations the product never sends (compare, modify DN, abandon)
// make gldap drop the connection.
package demodir
