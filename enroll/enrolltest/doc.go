// Package enrolltest holds test doubles and fixtures for the enrollment
// journey: a controllable clock, a map-backed directory, a recording mail
// transport, a recording mail renderer that also renders with the real
// templates (so data a real mail needs cannot go missing), a
// goroutine-safe log sink and readers of the queued SMS and calls. It is
// test support, like net/http/httptest: only tests import it.
package enrolltest
