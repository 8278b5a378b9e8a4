// Package directorytest owns the conformance suites every
// directory.Directory implementation must pass (Run, RunLockout, RunAdmin,
// RunSelfService): Active Directory (Samba), OpenLDAP and the embedded demo
// directory run the same tests.
package directorytest
