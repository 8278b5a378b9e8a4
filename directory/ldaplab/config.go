package ldaplab

import (
	"time"

	"github.com/replyreset/replyreset/directory"
)

// DirectoryConfig is the product's directory configuration for this
// server: LDAPS verified against CAFile, bound as the service account.
func (s *Server) DirectoryConfig() directory.Config {
	c := directory.DefaultConfig()
	c.Dialect = s.Dialect
	c.URLs = []string{s.LDAPSURL}
	c.CAFile = s.CAFile
	c.BindDN, c.BindPassword = s.ServiceDN, s.ServicePassword
	c.BaseDN = s.BaseDN
	c.Timeout = 5 * time.Second
	return c
}
