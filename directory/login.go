package directory

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Login names. Authenticate (the admin console's login) takes what people
// type at a Windows or web logon: the username, user@domain, or
// DOMAIN\user. The username attribute is tried first, so a username that
// contains @ or \ (OpenLDAP uid may) still names its owner; the other forms
// are read only when no user has that username, and each names at most one
// user (several is ErrAmbiguous, never a pick).

// findLogin finds the user that login names:
//   - a user whose username attribute equals login;
//   - else, for DOMAIN\user, the user whose username is user. On AD, DOMAIN
//     must be the NetBIOS name of the domain that holds base_dn (when the
//     directory publishes it); OpenLDAP has no domain, so any is dropped;
//   - else, for user@domain, the user whose userPrincipalName (AD) or mail
//     attribute (OpenLDAP) equals login.
func (c *Client) findLogin(ctx context.Context, login string) (User, error) {
	const op = "authenticate"
	if strings.TrimSpace(login) == "" || !validValue(login) {
		return User{}, fmt.Errorf("%s: empty username, control characters or invalid UTF-8: %w", op, ErrNotFound)
	}
	usernameAttr := c.cfg.EffectiveUsernameAttribute()
	var u User
	err := c.run(ctx, "find", func(conn *ldap.Conn) error {
		var err error
		u, err = c.search(ctx, conn, usernameAttr, login)
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if domain, name, ok := strings.Cut(login, `\`); ok {
			if strings.TrimSpace(domain) == "" || strings.TrimSpace(name) == "" || strings.Contains(name, `\`) {
				return fmt.Errorf("%s: %q is not DOMAIN\\user: %w", op, login, ErrNotFound)
			}
			if err := c.checkDomain(ctx, conn, domain); err != nil {
				return err
			}
			u, err = c.search(ctx, conn, usernameAttr, name)
			return err
		}
		if local, domain, ok := strings.Cut(login, "@"); ok && local != "" && domain != "" {
			u, err = c.search(ctx, conn, c.principalAttribute(), login)
		}
		return err
	})
	return u, err
}

// principalAttribute holds user@domain login names: userPrincipalName on
// AD, the mail attribute on OpenLDAP.
func (c *Client) principalAttribute() string {
	if c.cfg.Dialect == DialectAD {
		return "userPrincipalName"
	}
	return c.cfg.MailAttribute
}

// checkDomain refuses, with ErrNotFound, a DOMAIN\user prefix that is not
// the NetBIOS name of this directory's domain. OpenLDAP, or an AD whose
// NetBIOS name cannot be read, accepts any.
func (c *Client) checkDomain(ctx context.Context, conn *ldap.Conn, domain string) error {
	d, ok := c.dialect.(*adDialect)
	if !ok {
		return nil
	}
	netbios, err := c.netbiosName(ctx, conn, d)
	if err != nil {
		return err
	}
	if netbios != "" && !strings.EqualFold(netbios, strings.TrimSpace(domain)) {
		return fmt.Errorf("authenticate: domain %q is not this directory's domain %q: %w", domain, netbios, ErrNotFound)
	}
	return nil
}

// netbiosName reads, once, the NetBIOS name of the AD domain that holds
// base_dn: the nETBIOSName of its crossRef under CN=Partitions of the
// configuration naming context. "" when the directory does not say.
func (c *Client) netbiosName(ctx context.Context, conn *ldap.Conn, d *adDialect) (string, error) {
	if v := d.netbios.Load(); v != nil {
		return *v, nil
	}
	root, err := c.readBaseEntry(ctx, conn, "read RootDSE", "", "(objectClass=*)", []string{"configurationNamingContext"})
	if err != nil {
		return "", err
	}
	name := ""
	base, baseErr := ldap.ParseDN(c.cfg.BaseDN)
	if root != nil && baseErr == nil && root.GetAttributeValue("configurationNamingContext") != "" {
		req := ldap.NewSearchRequest("CN=Partitions,"+root.GetAttributeValue("configurationNamingContext"),
			ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, int(c.cfg.Timeout.Seconds()), false,
			crossRefFilter, []string{"nCName", "nETBIOSName"}, nil)
		var res *ldap.SearchResult
		err := withCtx(ctx, conn, c.cfg.Timeout, func() error {
			var err error
			res, err = conn.Search(req)
			return err
		})
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return "", classify("read domain partitions", err)
		}
		if err != nil {
			res = &ldap.SearchResult{} // no partitions container: the directory does not say
		}
		depth := 0
		for _, e := range res.Entries {
			// The closest domain naming context that holds base_dn.
			nc, err := ldap.ParseDN(e.GetAttributeValue("nCName"))
			if err == nil && len(nc.RDNs) > depth && (nc.EqualFold(base) || nc.AncestorOfFold(base)) {
				name, depth = e.GetAttributeValue("nETBIOSName"), len(nc.RDNs)
			}
		}
	}
	d.netbios.Store(&name)
	return name, nil
}
