package ldaplab

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

const (
	olBaseDN          = "dc=example,dc=org"
	olUsersDN         = "ou=people," + olBaseDN
	olAdminDN         = "cn=admin," + olBaseDN
	olAdminPassword   = "Adm1n-secret-1"
	olServiceDN       = "cn=replyreset-svc," + olBaseDN
	olServicePassword = "Svc-secret-123"

	// olRecipe is part of the template's cache key (the template holds only
	// the certificate; the database is built per process in milliseconds).
	olRecipe = "openldap-recipe-1"
)

// startOpenLDAP builds a fresh slapd (cn=config and data loaded offline with
// slapadd) in its own directory and starts it on 127.0.0.1:3389 (ldap, with
// StartTLS) and 127.0.0.1:3636 (ldaps).
func startOpenLDAP() (*Server, error) {
	if err := requireTools("OpenLDAP slapd", "slapd", "slapadd", "openssl", "tar"); err != nil {
		return nil, err
	}
	tarPath, err := template("openldap-"+cacheKey(olRecipe), func(dir string) error {
		return makeCert(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), "localhost")
	})
	if err != nil {
		return nil, err
	}
	dir, err := newRunDir("openldap")
	if err != nil {
		return nil, fmt.Errorf("ldaplab: %w", err)
	}
	s, err := runOpenLDAP(dir, tarPath)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func runOpenLDAP(dir, tarPath string) (*Server, error) {
	if err := restore(tarPath, dir); err != nil {
		return nil, err
	}
	for _, d := range []string{"slapd.d", "data"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("ldaplab: %w", err)
		}
	}
	r := strings.NewReplacer("$D", dir, "$ADMINPW", ssha(olAdminPassword), "$SVCPW", ssha(olServicePassword))
	for name, text := range map[string]string{"config.ldif": olConfig, "data.ldif": olData} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(r.Replace(text)), 0o600); err != nil {
			return nil, fmt.Errorf("ldaplab: %w", err)
		}
	}
	slapdD := filepath.Join(dir, "slapd.d")
	if _, err := run(time.Minute, "slapadd", "-q", "-n", "0", "-F", slapdD, "-l", filepath.Join(dir, "config.ldif")); err != nil {
		return nil, err
	}
	// slapadd bypasses the overlays: the data holds only what needs no
	// ppolicy or memberof processing; the rest is added over LDAP below.
	if _, err := run(time.Minute, "slapadd", "-q", "-n", "1", "-F", slapdD, "-l", filepath.Join(dir, "data.ldif")); err != nil {
		return nil, err
	}
	s := &Server{
		Dialect:          DialectOpenLDAP,
		LDAPSURL:         "ldaps://127.0.0.1:3636",
		StartTLSURL:      "ldap://127.0.0.1:3389",
		CAFile:           filepath.Join(dir, "cert.pem"),
		BaseDN:           olBaseDN,
		UsersDN:          olUsersDN,
		AdminDN:          olAdminDN,
		AdminPassword:    olAdminPassword,
		ServiceDN:        olServiceDN,
		ServicePassword:  olServicePassword,
		AdminGroupDN:     "cn=Helpdesk,ou=groups," + olBaseDN,
		HelpdeskDN:       "uid=" + helpdeskUsername + "," + olUsersDN,
		HelpdeskUsername: helpdeskUsername,
		HelpdeskPassword: helpdeskPassword,
		dir:              dir,
	}
	if err := s.loadRoots(); err != nil {
		return nil, err
	}
	if err := checkPortsFree("OpenLDAP slapd", 3389, 3636); err != nil {
		return nil, err
	}
	// -d 0: stay in the foreground without debug output.
	p, err := startProcess("slapd", filepath.Join(dir, "slapd.out"),
		"slapd", "-d", "0", "-F", slapdD, "-h", "ldap://127.0.0.1:3389/ ldaps://127.0.0.1:3636/")
	if err != nil {
		return nil, err
	}
	s.proc = p
	if err := p.waitReady(20*time.Second, s.probe); err != nil {
		return nil, err
	}
	if err := s.addOpenLDAPFixtures(); err != nil {
		p.kill()
		return nil, err
	}
	return s, nil
}

// addOpenLDAPFixtures adds, over LDAP so that ppolicy hashes the password and
// memberof maintains memberOf, the helpdesk user and the nested groups
// Helpdesk > Tier2 > helpdeskadmin.
func (s *Server) addOpenLDAPFixtures() error {
	c, err := s.bound(s.AdminDN, s.AdminPassword)
	if err != nil {
		return err
	}
	defer c.Close()
	user := ldap.NewAddRequest(s.HelpdeskDN, nil)
	user.Attribute("objectClass", []string{"inetOrgPerson"})
	user.Attribute("uid", []string{helpdeskUsername})
	user.Attribute("cn", []string{"Helpdesk Admin"})
	user.Attribute("givenName", []string{"Helpdesk"})
	user.Attribute("sn", []string{"Admin"})
	user.Attribute("mail", []string{"helpdeskadmin@example.org"})
	user.Attribute("userPassword", []string{helpdeskPassword})
	tier2 := ldap.NewAddRequest("cn=Tier2,ou=groups,"+olBaseDN, nil)
	tier2.Attribute("objectClass", []string{"groupOfNames"})
	tier2.Attribute("cn", []string{"Tier2"})
	tier2.Attribute("member", []string{s.HelpdeskDN})
	helpdesk := ldap.NewAddRequest(s.AdminGroupDN, nil)
	helpdesk.Attribute("objectClass", []string{"groupOfNames"})
	helpdesk.Attribute("cn", []string{"Helpdesk"})
	helpdesk.Attribute("member", []string{tier2.DN})
	for _, add := range []*ldap.AddRequest{user, tier2, helpdesk} {
		if err := c.Add(add); err != nil {
			return fmt.Errorf("ldaplab: add %s: %w", add.DN, err)
		}
	}
	return nil
}

// ssha hashes a password for slapadd, which bypasses ppolicy's hashing.
func ssha(password string) string {
	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	sum := sha1.Sum(append([]byte(password), salt...))
	return "{SSHA}" + base64.StdEncoding.EncodeToString(append(sum[:], salt...))
}

// olConfig is cn=config. The rootdn bypasses ppolicy, so the product binds
// as replyreset-svc, an ordinary entry given write on the users' userPassword
// (Password Modify) and manage on the users (unlock by deleting pwdAccountLockedTime,
// must-change by writing pwdReset); ppolicy's quality and history checks
// apply to it.
const olConfig = `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $D/slapd.pid
olcArgsFile: $D/slapd.args
olcTLSCertificateFile: $D/cert.pem
olcTLSCertificateKeyFile: $D/key.pem

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: ppolicy
olcModuleLoad: memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/nis.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcPasswordHash: {SSHA}

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: $D/data
olcSuffix: ` + olBaseDN + `
olcRootDN: ` + olAdminDN + `
olcRootPW: $ADMINPW
olcDbMaxSize: 104857600
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: mail eq
olcDbIndex: mobile eq
olcDbIndex: member eq
olcDbIndex: memberOf eq
olcDbIndex: pwdAccountLockedTime pres
olcAccess: {0}to dn.subtree="` + olUsersDN + `" attrs=userPassword by dn.exact="` + olServiceDN + `" write by self write by anonymous auth by * none
olcAccess: {1}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {2}to dn.subtree="` + olUsersDN + `" by dn.exact="` + olServiceDN + `" manage by self read by users read by * none
olcAccess: {3}to * by self read by users read by * none

dn: olcOverlay={0}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {0}ppolicy
olcPPolicyDefault: cn=default,ou=policies,` + olBaseDN + `
olcPPolicyHashCleartext: TRUE
olcPPolicyUseLockout: TRUE

dn: olcOverlay={1}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {1}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf
`

// olData is the base, the policy (lockout after 5 failures for 10 minutes,
// must change after an admin reset, at least 8 characters, history of 5),
// the containers and the service account.
const olData = `dn: ` + olBaseDN + `
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=policies,` + olBaseDN + `
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,` + olBaseDN + `
objectClass: device
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdMaxFailure: 5
pwdLockout: TRUE
pwdLockoutDuration: 600
pwdFailureCountInterval: 600
pwdMustChange: TRUE
pwdAllowUserChange: TRUE
pwdSafeModify: FALSE
pwdInHistory: 5
pwdMinLength: 8
pwdCheckQuality: 2

dn: ` + olUsersDN + `
objectClass: organizationalUnit
ou: people

dn: ou=groups,` + olBaseDN + `
objectClass: organizationalUnit
ou: groups

dn: ` + olServiceDN + `
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: replyreset-svc
userPassword: $SVCPW
`
