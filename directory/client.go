package directory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Client is the LDAP implementation of Directory for both dialects.
type Client struct {
	cfg     Config
	dialect dialect
	pool    *pool
	log     *slog.Logger
	now     func() time.Time
	observe func(op string, took time.Duration, err error)
	policy  SelfServicePolicy
}

var _ Directory = (*Client)(nil)

// Options tune a Client; the zero value is the production default.
type Options struct {
	PoolSize    int           // open service connections at most (default 8)
	FallbackTTL time.Duration // how long a connection to a fallback URL is kept (default 30s)
	Logger      *slog.Logger
	// Observer, when set, is told of every directory operation: its name
	// ("find", "set_password", "unlock", "bind_user", "scan_lockouts",
	// ...), how long it took and its error (metrics).
	Observer func(op string, took time.Duration, err error)
	// SelfService is who may use self-service (reset: protect_privileged,
	// allow_groups, deny_groups), for CheckSelfService; the zero value
	// protects privileged accounts.
	SelfService SelfServicePolicy
}

// New returns a Client for cfg. It does not dial: the first operation (or
// Ping) does, so a directory outage does not stop the gateway from starting.
func New(cfg Config, opt Options) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for key, attr := range map[string]string{"username_attribute": cfg.EffectiveUsernameAttribute(), "mail_attribute": cfg.MailAttribute, "mobile_attribute": cfg.MobileAttribute} {
		if !validAttributeName(attr) {
			return nil, fmt.Errorf("directory.%s: %q is not an attribute name", key, attr)
		}
	}
	if err := opt.SelfService.validate(); err != nil {
		return nil, err
	}
	if opt.PoolSize <= 0 {
		opt.PoolSize = 8
	}
	if opt.FallbackTTL <= 0 {
		opt.FallbackTTL = 30 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, log: opt.Logger, now: time.Now, observe: opt.Observer, policy: opt.SelfService}
	switch cfg.Dialect {
	case DialectAD:
		c.dialect = &adDialect{cfg: cfg}
	case DialectOpenLDAP:
		c.dialect = &openldapDialect{cfg: cfg}
	}
	c.pool = newPool(dialer{cfg: cfg}, opt.PoolSize, opt.FallbackTTL)
	return c, nil
}

// dialect is what differs between Active Directory and OpenLDAP.
type dialect interface {
	// attributes to read for a User.
	attributes() []string
	// user builds a User from a search entry.
	user(conn *ldap.Conn, e *ldap.Entry, now time.Time) User
	// setPassword writes a new password (and flags) as the service account.
	setPassword(conn *ldap.Conn, u User, password string, opt SetPasswordOptions) error
	// unlock clears a lockout.
	unlock(conn *ldap.Conn, u User) error
	// bindRequest and bindError shape a user bind and read its outcome.
	bindRequest(dn, password string) *ldap.SimpleBindRequest
	bindError(res *ldap.SimpleBindResult, err error) error
	// passwordPolicy reads the password rules that apply to u.
	passwordPolicy(conn *ldap.Conn, u User) (PasswordPolicy, error)
}

// PasswordPolicy is what the directory asks of u's new password, as far
// as the service account can read it, to show before the user types one.
type PasswordPolicy struct {
	MinLength int  // characters; 0: no minimum
	History   int  // the last passwords refused again; 0: none
	Complex   bool // AD complexity: 3 of 4 kinds, not the account's names
	// Quality is OpenLDAP ppolicy's pwdCheckQuality (0 none, 1 checked
	// when possible, 2 always).
	Quality int
	// Source names where the rules come from: the domain, a fine-grained
	// policy (PSO) or a ppolicy entry, by DN.
	Source string
	// Unread: a fine-grained policy applies to u that the service account
	// may not read (AD lets only Domain Admins read PSOs unless
	// delegated); the other fields are then zero, not the domain's.
	Unread bool
}

// PasswordPolicy reads the password rules that apply to u: on AD the
// user's resultant fine-grained policy (msDS-ResultantPSO) when there is
// one and it can be read, else the domain's; on OpenLDAP the user's
// pwdPolicySubentry, else the only pwdPolicy entry under the base (the
// overlay's default lives in cn=config, which a service account cannot
// read).
func (c *Client) PasswordPolicy(ctx context.Context, u User) (PasswordPolicy, error) {
	if u.DN == "" {
		return PasswordPolicy{}, fmt.Errorf("password policy: user has no DN: %w", ErrNotFound)
	}
	var p PasswordPolicy
	err := c.run(ctx, "password_policy", func(conn *ldap.Conn) error {
		return withCtx(ctx, conn, c.cfg.Timeout, func() error {
			var err error
			p, err = c.dialect.passwordPolicy(conn, u)
			return err
		})
	})
	return p, err
}

// readOne reads attrs of the entry dn ("" and the RootDSE alike), or
// nil when there is no such entry.
func readOne(conn *ldap.Conn, dn string, attrs ...string) (*ldap.Entry, error) {
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", attrs, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, classify("read "+dn, err)
	}
	if len(res.Entries) != 1 {
		return nil, nil
	}
	return res.Entries[0], nil
}

// attrOf is e's first value of name; "" when e is nil.
func attrOf(e *ldap.Entry, name string) string {
	if e == nil {
		return ""
	}
	return e.GetAttributeValue(name)
}

// intOf is attrOf as a number (0 when absent or not one).
func intOf(e *ldap.Entry, name string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(attrOf(e, name)))
	return n
}

func (c *Client) FindUser(ctx context.Context, username string) (User, error) {
	return c.findBy(ctx, c.cfg.EffectiveUsernameAttribute(), username)
}

func (c *Client) FindByMail(ctx context.Context, mail string) (User, error) {
	return c.findBy(ctx, c.cfg.MailAttribute, mail)
}

func (c *Client) FindByMobile(ctx context.Context, mobile string) (User, error) {
	return c.findBy(ctx, c.cfg.MobileAttribute, mobile)
}

func (c *Client) findBy(ctx context.Context, attr, value string) (User, error) {
	if strings.TrimSpace(value) == "" {
		return User{}, fmt.Errorf("find by %s: empty value: %w", attr, ErrNotFound)
	}
	if !validValue(value) {
		return User{}, fmt.Errorf("find by %s: value holds control characters or invalid UTF-8: %w", attr, ErrNotFound)
	}
	var u User
	err := c.run(ctx, "find", func(conn *ldap.Conn) error {
		var err error
		u, err = c.search(ctx, conn, attr, value)
		return err
	})
	return u, err
}

// search finds exactly one user whose attr equals value.
func (c *Client) search(ctx context.Context, conn *ldap.Conn, attr, value string) (User, error) {
	e, err := c.searchOne(ctx, conn, "find by "+attr, userEqualityFilter(c.cfg.EffectiveUserFilter(), attr, value),
		c.dialect.attributes())
	if err != nil {
		return User{}, err
	}
	return c.dialect.user(conn, e, c.now()), nil
}

// searchOne finds exactly one entry under the base DN that matches filter:
// none is ErrNotFound, more than one ErrAmbiguous.
func (c *Client) searchOne(ctx context.Context, conn *ldap.Conn, op, filter string, attrs []string) (*ldap.Entry, error) {
	req := ldap.NewSearchRequest(c.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(c.cfg.Timeout/time.Second), false, filter, attrs, nil)
	var res *ldap.SearchResult
	err := withCtx(ctx, conn, c.cfg.Timeout, func() error {
		var err error
		res, err = conn.Search(req)
		return err
	})
	if err != nil && !(ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) && res != nil) {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, fmt.Errorf("%s: base DN %q does not exist: %w", op, c.cfg.BaseDN, ErrUnavailable)
		}
		return nil, classify(op, err)
	}
	switch n := len(res.Entries); {
	case n == 0:
		return nil, fmt.Errorf("%s: %w", op, ErrNotFound)
	case n > 1:
		return nil, fmt.Errorf("%s: %w", op, ErrAmbiguous)
	}
	return res.Entries[0], nil
}

func (c *Client) SetPassword(ctx context.Context, u User, password string, opt SetPasswordOptions) error {
	if u.DN == "" {
		return fmt.Errorf("set password: user has no DN: %w", ErrNotFound)
	}
	if password == "" {
		return fmt.Errorf("set password: %w", &PolicyError{Reason: "empty password"})
	}
	return c.run(ctx, "set_password", func(conn *ldap.Conn) error {
		return withCtx(ctx, conn, c.cfg.Timeout, func() error {
			return c.dialect.setPassword(conn, u, password, opt)
		})
	})
}

func (c *Client) Unlock(ctx context.Context, u User) error {
	if u.DN == "" {
		return fmt.Errorf("unlock: user has no DN: %w", ErrNotFound)
	}
	return c.run(ctx, "unlock", func(conn *ldap.Conn) error {
		return withCtx(ctx, conn, c.cfg.Timeout, func() error { return c.dialect.unlock(conn, u) })
	})
}

// run runs fn on a pooled service connection as operation op, for the
// Observer.
func (c *Client) run(ctx context.Context, op string, fn func(*ldap.Conn) error) error {
	start := time.Now()
	err := c.pool.do(ctx, fn)
	if c.observe != nil {
		c.observe(op, time.Since(start), err)
	}
	return err
}

// Authenticate binds as the user on a connection of its own, so the pooled
// service connections never change identity. username is a login name as
// findLogin reads it: the username attribute, else DOMAIN\user or
// user@domain (userPrincipalName on AD, the mail attribute on OpenLDAP).
func (c *Client) Authenticate(ctx context.Context, username, password string) (_ User, err error) {
	if c.observe != nil {
		start := time.Now()
		defer func() { c.observe("bind_user", time.Since(start), err) }()
	}
	u, err := c.findLogin(ctx, username)
	if errors.Is(err, ErrNotFound) && password != "" {
		// No such user: bind anyway, as a name nobody has, so that an
		// unknown login costs what a wrong password costs (a TLS dial and
		// a bind) and timing does not tell which accounts exist. The
		// server answers "invalid credentials"; the caller gets ErrNotFound.
		_, _ = c.bindAsUser(ctx, c.decoyDN(), password)
		return User{}, err
	}
	if err != nil {
		return User{}, err
	}
	if password == "" { // an empty password would be an anonymous bind
		return u, fmt.Errorf("authenticate: %w", ErrInvalidCredentials)
	}
	res, err := c.bindAsUser(ctx, u.DN, password)
	if errors.Is(err, errNoServer) {
		return u, err
	}
	return u, c.dialect.bindError(res, err)
}

// errNoServer wraps ErrUnavailable when no URL could be dialled.
var errNoServer = fmt.Errorf("authenticate: %w", ErrUnavailable)

// bindAsUser binds as dn on a connection of its own (the first URL that
// dials), so the pooled service connections never change identity.
func (c *Client) bindAsUser(ctx context.Context, dn, password string) (*ldap.SimpleBindResult, error) {
	var errs []error
	for _, raw := range c.cfg.URLs {
		conn, err := dialer{cfg: c.cfg}.dial(ctx, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var res *ldap.SimpleBindResult
		err = withCtx(ctx, conn, c.cfg.Timeout, func() error {
			var err error
			res, err = conn.SimpleBind(c.dialect.bindRequest(dn, password))
			return err
		})
		conn.Close()
		return res, err
	}
	return nil, fmt.Errorf("%w: %w", errNoServer, errors.Join(errs...))
}

// decoyDN is a DN under base_dn that names nobody.
func (c *Client) decoyDN() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "CN=replyreset-nobody-" + hex.EncodeToString(b[:]) + "," + c.cfg.BaseDN
}

// Ping binds a service connection and reads the base DN entry.
func (c *Client) Ping(ctx context.Context) error {
	return c.run(ctx, "ping", func(conn *ldap.Conn) error {
		return c.readBase(ctx, conn)
	})
}

func (c *Client) readBase(ctx context.Context, conn *ldap.Conn) error {
	req := ldap.NewSearchRequest(c.cfg.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil)
	err := withCtx(ctx, conn, c.cfg.Timeout, func() error { _, err := conn.Search(req); return err })
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return fmt.Errorf("base DN %q does not exist (check directory.base_dn): %w", c.cfg.BaseDN, err)
	}
	return classify("read base DN", err)
}

func (c *Client) Close() error {
	c.pool.close()
	return nil
}

// Dialect returns the configured dialect name.
func (c *Client) Dialect() string { return c.cfg.Dialect }
