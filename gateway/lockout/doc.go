// Package lockout owns the lockout watch: it polls the directory for new
// account lockouts, texts each enrolled user one alert, and holds the
// texts back and mails the admins once during a lockout storm.
package lockout
