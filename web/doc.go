// Package web owns the HTTP side of the product: the Echo server's routes and
// middleware, the enrollment and phone-change pages, the admin console (its
// sessions kept in the store) and the JSON API, reaching the directory,
// Twilio and the store only through the small interfaces it declares.
package web
