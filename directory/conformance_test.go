package directory_test

import (
	"errors"
	"testing"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/directory/directorytest"
	"github.com/replyreset/replyreset/directory/ldaplab"
)

// labConfig is the product configuration for a lab server, bound as bindDN.
func labConfig(s *ldaplab.Server, bindDN, bindPassword string) directory.Config {
	c := s.DirectoryConfig()
	c.BindDN, c.BindPassword = bindDN, bindPassword
	return c
}

func openClient(t *testing.T, c directory.Config) *directory.Client {
	t.Helper()
	d, err := directory.New(c, directory.Options{})
	if err != nil {
		t.Fatalf("directory.New: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// labBackend adapts an ldaplab server to the conformance suite.
func labBackend(t *testing.T, s *ldaplab.Server) directorytest.Backend {
	return directorytest.Backend{
		Name: s.Dialect,
		Directory: func(t *testing.T) directory.Directory {
			return openClient(t, labConfig(s, s.ServiceDN, s.ServicePassword))
		},
		Unprivileged: func(t *testing.T) directory.Directory {
			name := s.UniqueName("weak")
			dn := s.AddUser(t, ldaplab.UserSpec{Username: name, Password: "Weak#Pass1x", DisplayName: "Weak"})
			return openClient(t, labConfig(s, dn, "Weak#Pass1x"))
		},
		AddUser: func(t *testing.T, u directorytest.UserSpec) string {
			return s.AddUser(t, ldaplab.UserSpec{Username: u.Username, Password: u.Password,
				DisplayName: u.DisplayName, Mail: u.Mail, Mobile: u.Mobile})
		},
		UniqueName: s.UniqueName,
		LockOut:    func(t *testing.T, dn string) { s.LockOut(t, dn) },
		RawBind: func(dn, password string) (directorytest.BindOutcome, error) {
			return bindOutcome(s.BindErr(dn, password))
		},
		SpecialCharUsernames: s.Dialect == ldaplab.DialectOpenLDAP,
	}
}

func bindOutcome(err error) (directorytest.BindOutcome, error) {
	if err == nil {
		return directorytest.BindOK, nil
	}
	var be *ldaplab.BindError
	if !errors.As(err, &be) {
		return directorytest.BindOther, err
	}
	switch be.Outcome() {
	case "must-change":
		return directorytest.BindMustChange, err
	case "locked":
		return directorytest.BindLocked, err
	case "invalid":
		return directorytest.BindInvalid, err
	}
	return directorytest.BindOther, err
}

func TestConformanceSambaAD(t *testing.T) {
	directorytest.Run(t, labBackend(t, ldaplab.Samba(t)))
}

func TestConformanceOpenLDAP(t *testing.T) {
	directorytest.Run(t, labBackend(t, ldaplab.OpenLDAP(t)))
}
