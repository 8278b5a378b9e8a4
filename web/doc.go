// Package web owns the Echo HTTP server: routes, middleware, pages, admin
// console and API; it must not talk LDAP or Twilio directly.
package web
