// Package directory owns every conversation with the user directory: the
// Directory interface and its Active Directory and OpenLDAP dialects (find,
// set password, unlock, bind, lockout scanning, admin-group and
// self-service checks) over pooled, failing-over LDAP connections, with LDAP
// filter building as the only place user input is escaped.
//
// It must not know about phones, SMS, enrollments or password generation
// (enroll/password): callers hand it a username or an attribute value and
// get typed errors back.
package directory
