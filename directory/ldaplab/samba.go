package ldaplab

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// The Samba domain. Samba's LDAP ports cannot be changed (there is no smb.conf
// setting for them), hence one network namespace per test process.
const (
	sambaRealm   = "SSPR.TEST"
	sambaDomain  = "SSPR"
	sambaBaseDN  = "DC=sspr,DC=test"
	sambaUsersDN = "OU=Staff," + sambaBaseDN

	sambaAdminPassword   = "Adm1n!Passw0rd"
	sambaServiceUser     = "svc-replyreset"
	sambaServicePassword = "Svc!Replyr3set-1"
	helpdeskUsername     = "helpdeskadmin"
	helpdeskPassword     = "Helpd3sk!Pass-1"

	// sambaRecipe is part of the template's cache key: change it whenever
	// provisionSamba changes, so that every machine provisions anew.
	sambaRecipe = "samba-recipe-2"
)

var sambaPorts = []int{389, 636, 3268, 3269}

// startSamba restores the provisioned template into a fresh directory and
// starts `samba -i -M single` with only the LDAP service, on 127.0.0.1.
func startSamba() (*Server, error) {
	if err := requireTools("Samba AD DC", "samba", "samba-tool", "openssl", "tar"); err != nil {
		return nil, err
	}
	version, err := run(time.Minute, "samba", "-V")
	if err != nil {
		return nil, err
	}
	tarPath, err := template("samba-"+cacheKey(sambaRecipe, version), provisionSamba)
	if err != nil {
		return nil, err
	}
	dir, err := newRunDir("samba")
	if err != nil {
		return nil, fmt.Errorf("ldaplab: %w", err)
	}
	s, err := runSamba(dir, tarPath)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func runSamba(dir, tarPath string) (*Server, error) {
	if err := restore(tarPath, dir); err != nil {
		return nil, err
	}
	if err := writeSambaConf(dir); err != nil {
		return nil, err
	}
	s := &Server{
		Dialect:          DialectAD,
		LDAPSURL:         "ldaps://127.0.0.1:636",
		StartTLSURL:      "ldap://127.0.0.1:389",
		CAFile:           filepath.Join(dir, "private", "tls", "cert.pem"),
		BaseDN:           sambaBaseDN,
		UsersDN:          sambaUsersDN,
		AdminDN:          "CN=Administrator,CN=Users," + sambaBaseDN,
		AdminPassword:    sambaAdminPassword,
		ServiceDN:        "CN=" + sambaServiceUser + ",OU=Service Accounts," + sambaBaseDN,
		ServicePassword:  sambaServicePassword,
		AdminGroupDN:     "CN=Helpdesk,OU=Groups," + sambaBaseDN,
		HelpdeskDN:       "CN=" + helpdeskUsername + "," + sambaUsersDN,
		HelpdeskUsername: helpdeskUsername,
		HelpdeskPassword: helpdeskPassword,
		dir:              dir,
	}
	if err := s.loadRoots(); err != nil {
		return nil, err
	}
	if err := checkPortsFree("Samba AD DC", sambaPorts...); err != nil {
		return nil, err
	}
	// --maximum-runtime is a last resort should the parent-death signal
	// fail: no test process runs for 4 hours.
	p, err := startProcess("samba", filepath.Join(dir, "samba.out"),
		"samba", "-i", "-M", "single", "--maximum-runtime=14400", "-s", filepath.Join(dir, "etc", "smb.conf"))
	if err != nil {
		return nil, err
	}
	s.proc = p
	if err := p.waitReady(60*time.Second, s.probe); err != nil {
		return nil, err
	}
	return s, nil
}

// provisionSamba builds the template: a provisioned domain with our own
// certificate, the lab's password policy, and the fixed accounts and groups.
// It runs offline against sam.ldb; no server is started.
func provisionSamba(dir string) error {
	// -s <empty file>: do not inherit globals from /etc/samba/smb.conf.
	empty := dir + ".empty.conf"
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		return fmt.Errorf("ldaplab: %w", err)
	}
	defer os.Remove(empty)
	if _, err := run(5*time.Minute, "samba-tool", "domain", "provision", "-s", empty,
		"--server-role=dc", "--use-rfc2307", "--dns-backend=NONE",
		"--realm="+sambaRealm, "--domain="+sambaDomain, "--host-name=dc1", "--host-ip=127.0.0.1",
		"--adminpass="+sambaAdminPassword, "--targetdir="+dir,
		"--option=interfaces=127.0.0.1", "--option=bind interfaces only=yes",
		"--option=server services=ldap"); err != nil {
		return err
	}
	if err := writeSambaConf(dir); err != nil {
		return err
	}
	tls := filepath.Join(dir, "private", "tls")
	if err := os.MkdirAll(tls, 0o700); err != nil {
		return fmt.Errorf("ldaplab: %w", err)
	}
	if err := makeCert(filepath.Join(tls, "cert.pem"), filepath.Join(tls, "key.pem"), "dc1.sspr.test"); err != nil {
		return err
	}

	tool := func(args ...string) (string, error) {
		args = append([]string{"samba-tool"}, args...)
		args = append(args, "-H", filepath.Join(dir, "private", "sam.ldb"), "-s", filepath.Join(dir, "etc", "smb.conf"))
		return run(2*time.Minute, args...)
	}
	steps := [][]string{
		// Lockout after 5 failures for 10 minutes; min age 0 so that tests
		// can change a password twice.
		{"domain", "passwordsettings", "set", "--account-lockout-threshold=5", "--account-lockout-duration=10",
			"--reset-account-lockout-after=10", "--min-pwd-age=0"},
		{"ou", "add", sambaUsersDN},
		{"ou", "add", "OU=Groups," + sambaBaseDN},
		{"ou", "add", "OU=Service Accounts," + sambaBaseDN},
		{"user", "create", sambaServiceUser, sambaServicePassword, "--userou=OU=Service Accounts"},
		{"user", "create", helpdeskUsername, helpdeskPassword, "--userou=OU=Staff", "--use-username-as-cn",
			"--given-name=Helpdesk", "--surname=Admin", "--mail-address=helpdeskadmin@sspr.test"},
		{"group", "add", "Helpdesk", "--groupou=OU=Groups"},
		{"group", "add", "Tier2", "--groupou=OU=Groups"},
		{"group", "addmembers", "Helpdesk", "Tier2"},
		{"group", "addmembers", "Tier2", helpdeskUsername},
	}
	for _, step := range steps {
		if _, err := tool(step...); err != nil {
			return err
		}
	}
	out, err := tool("user", "show", sambaServiceUser, "--attributes=objectSid")
	if err != nil {
		return err
	}
	sid := regexp.MustCompile(`objectSid: (S-1-5-[0-9-]+)`).FindStringSubmatch(out)
	if sid == nil {
		return fmt.Errorf("ldaplab: no objectSid for %s in:\n%s", sambaServiceUser, out)
	}
	_, err = tool("dsacl", "set", "--objectdn="+sambaUsersDN, "--sddl="+serviceACEs(sid[1]))
	return err
}

// serviceACEs delegates to the service account, on every user object under
// the users OU (inherit-only ACEs scoped to the user class), exactly what
// the product needs, as an AD admin would with the Delegation of Control
// wizard: the Reset-Password extended right (replace unicodePwd without the
// old one) and write access to pwdLastSet (must change) and lockoutTime
// (unlock). Reading needs nothing: Authenticated Users may read users.
func serviceACEs(sid string) string {
	const (
		userClass     = "bf967aba-0de6-11d0-a285-00aa003049e2"
		resetPassword = "00299570-246d-11d0-a768-00aa006e0529" // User-Force-Change-Password
		pwdLastSet    = "bf967a0a-0de6-11d0-a285-00aa003049e2"
		lockoutTime   = "28630ebf-41d5-11d1-a9c1-0000f80367c1"
	)
	return fmt.Sprintf("(OA;CIIO;CR;%[2]s;%[1]s;%[5]s)(OA;CIIO;WP;%[3]s;%[1]s;%[5]s)(OA;CIIO;WP;%[4]s;%[1]s;%[5]s)",
		userClass, resetPassword, pwdLastSet, lockoutTime, sid)
}

// writeSambaConf writes a fully explicit smb.conf for the domain in dir. It
// replaces the one provisioning wrote, since a restored template lives in a
// new directory.
func writeSambaConf(dir string) error {
	conf := strings.NewReplacer("$D", dir).Replace(`[global]
	netbios name = DC1
	workgroup = ` + sambaDomain + `
	realm = ` + sambaRealm + `
	server role = active directory domain controller
	# only the LDAP server: no dns, kdc, smbd, nbt, cldap, rpc, winbindd,
	# drepl or dnsupdate (which would query the resolv.conf nameserver)
	server services = ldap
	interfaces = 127.0.0.1
	bind interfaces only = yes
	private dir = $D/private
	lock directory = $D
	state directory = $D/state
	cache directory = $D/cache
	binddns dir = $D/bind-dns
	pid directory = $D/run
	log file = $D/samba.log
	idmap_ldb:use rfc2307 = yes
	tls enabled = yes
	tls keyfile = $D/private/tls/key.pem
	tls certfile = $D/private/tls/cert.pem
	tls cafile = $D/private/tls/cert.pem
	# the previous password must stop working at once after a reset
	old password allowed period = 0
`)
	for _, d := range []string{"etc", "run", "state", "cache"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return fmt.Errorf("ldaplab: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "smb.conf"), []byte(conf), 0o600); err != nil {
		return fmt.Errorf("ldaplab: %w", err)
	}
	return nil
}

// loadRoots reads CAFile for TLSConfig.
func (s *Server) loadRoots() error {
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return fmt.Errorf("ldaplab: %w", err)
	}
	s.roots = x509.NewCertPool()
	if !s.roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("ldaplab: no certificate in %s", s.CAFile)
	}
	return nil
}
