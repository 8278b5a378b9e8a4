// Package templates holds the embedded HTML templates, static assets and
// message catalogs (EN/FR) of the product; it has no logic beyond loading and
// formatting them.
package templates
