//go:build !windows

package main

// runAsService reports false: outside Windows a service manager (systemd,
// docs/replyreset.service) runs `replyreset serve` as an ordinary process.
func runAsService() (code int, ok bool) { return 0, false }
