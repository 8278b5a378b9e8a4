package directory

import (
	"context"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// When a password was last set, for the recovery of held RESET messages
// (gateway/heldrecovery.go): a message written held whose node died before
// releasing it is sent if its password was set after it was written, and
// replaced by "your reset did not finish" if not.
//
// Active Directory: pwdLastSet cannot tell, because a reset with "change
// at next logon" writes it 0. The originating change time of unicodePwd
// can: replPropertyMetaData holds one record per replicated attribute
// (Samba returns it to the service account; a FILETIME in seconds), and
// Windows constructs the same as XML in msDS-ReplAttributeMetaData. When
// the search finds the user without unicodePwd metadata, the entry is
// read again with a base-scope search, for a server that constructs
// msDS-ReplAttributeMetaData only there. When neither holds unicodePwd, a
// pwdLastSet other than 0 is the answer.
// OpenLDAP: pwdChangedTime, an operational attribute the ppolicy overlay
// writes on every password change (returned only when asked for by name).
// Both have a resolution of one second: the time is that of the change,
// cut to the second.

// ErrPasswordSetUnknown: the directory does not say when the user's
// password was set (AD: no unicodePwd metadata readable and pwdLastSet 0
// or absent; OpenLDAP: no pwdChangedTime, as without the ppolicy overlay).
var ErrPasswordSetUnknown = errors.New("directory: when the password was last set is not known")

// PasswordSetReader tells when a user's password was last set.
type PasswordSetReader interface {
	// PasswordSetAt returns when the password of username was last set
	// (reset by an admin or the gateway, or changed by the user), to the
	// second; ErrNotFound for no such user, ErrPasswordSetUnknown when
	// the directory does not say.
	PasswordSetAt(ctx context.Context, username string) (time.Time, error)
}

var _ PasswordSetReader = (*Client)(nil)

const (
	attrReplMeta    = "replPropertyMetaData"
	attrReplMetaXML = "msDS-ReplAttributeMetaData"
	// attidUnicodePwd is unicodePwd's attribute ID in replPropertyMetaData
	// (OID 1.2.840.113556.1.4.90: prefix 9, 90).
	attidUnicodePwd = 0x0009005a
)

// PasswordSetAt implements PasswordSetReader with one search.
func (c *Client) PasswordSetAt(ctx context.Context, username string) (time.Time, error) {
	attr := c.cfg.EffectiveUsernameAttribute()
	if strings.TrimSpace(username) == "" || !validValue(username) {
		return time.Time{}, fmt.Errorf("password set time of %q: not a username: %w", username, ErrNotFound)
	}
	attrs := []string{attrReplMeta, attrReplMetaXML, "pwdLastSet"}
	if c.cfg.Dialect == DialectOpenLDAP {
		attrs = []string{attrPwdChangedTime}
	}
	var at time.Time
	err := c.run(ctx, "password_set_at", func(conn *ldap.Conn) error {
		e, err := c.searchOne(ctx, conn, "password set time", userEqualityFilter(c.cfg.EffectiveUserFilter(), attr, username), attrs)
		if err != nil {
			return err
		}
		var ok bool
		if c.cfg.Dialect == DialectOpenLDAP {
			at, err = parseGeneralizedTime(e.GetAttributeValue(attrPwdChangedTime))
			ok = err == nil
		} else if at, ok = adPasswordSetAt(e); !ok {
			// A constructed attribute may be built for a base-scope read
			// only (as tokenGroups is): read the entry itself.
			base, err := c.readBaseEntry(ctx, conn, "password set time", e.DN, "(objectClass=*)", attrs)
			if err != nil {
				return err
			}
			if base != nil {
				at, ok = adPasswordSetAt(base)
			}
		}
		if !ok {
			return fmt.Errorf("password set time of %s: %w", username, ErrPasswordSetUnknown)
		}
		return nil
	})
	return at, err
}

// adPasswordSetAt reads the originating change of unicodePwd from the
// binary or the XML metadata, else a pwdLastSet other than 0.
func adPasswordSetAt(e *ldap.Entry) (time.Time, bool) {
	if t, ok := unicodePwdChange(e.GetRawAttributeValue(attrReplMeta)); ok {
		return t, true
	}
	for _, v := range e.GetAttributeValues(attrReplMetaXML) {
		if t, ok := unicodePwdChangeXML(v); ok {
			return t, true
		}
	}
	if t := fileTime(e.GetAttributeValue("pwdLastSet")); !t.IsZero() {
		return t, true
	}
	return time.Time{}, false
}

// unicodePwdChange finds unicodePwd in a replPropertyMetaData blob
// (MS-DRSR; Samba's replPropertyMetaDataBlob): version 1, a reserved
// word, the count, a reserved word, then per attribute 48 bytes, little
// endian: attid, version, the originating change time (seconds since
// 1601), the originating DSA's invocation GUID, the originating and the
// local USN.
func unicodePwdChange(blob []byte) (time.Time, bool) {
	const header, record = 16, 48
	if len(blob) < header || binary.LittleEndian.Uint32(blob) != 1 {
		return time.Time{}, false
	}
	n := uint64(binary.LittleEndian.Uint32(blob[8:]))
	if n > uint64(len(blob)-header)/record {
		return time.Time{}, false
	}
	for i := range int(n) {
		r := blob[header+i*record:]
		if binary.LittleEndian.Uint32(r) != attidUnicodePwd {
			continue
		}
		const epochDiff = 11644473600 // 1601-01-01 to 1970-01-01 in seconds
		secs := int64(binary.LittleEndian.Uint64(r[8:]))
		if secs <= epochDiff {
			return time.Time{}, false
		}
		return time.Unix(secs-epochDiff, 0).UTC(), true
	}
	return time.Time{}, false
}

// replAttrMeta is one value of msDS-ReplAttributeMetaData.
type replAttrMeta struct {
	Name    string `xml:"pszAttributeName"`
	Changed string `xml:"ftimeLastOriginatingChange"`
}

// unicodePwdChangeXML reads one value of msDS-ReplAttributeMetaData: the
// change time when it is unicodePwd's.
func unicodePwdChangeXML(v string) (time.Time, bool) {
	var m replAttrMeta
	if err := xml.Unmarshal([]byte(strings.TrimRight(v, "\x00")), &m); err != nil || !strings.EqualFold(m.Name, "unicodePwd") {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(m.Changed))
	if err != nil || t.Year() <= 1601 {
		return time.Time{}, false
	}
	return t.UTC(), true
}
