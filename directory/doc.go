// Package directory owns everything that talks to the user directory: the
// Directory interface, the Active Directory and OpenLDAP dialects, connection
// pooling with failover, LDAP filter building (the only place user input is
// escaped), password generation and, later, lockout scanning.
//
// It must not know about phones, SMS or enrollments: callers hand it a
// username or an attribute value and get typed errors back.
package directory
