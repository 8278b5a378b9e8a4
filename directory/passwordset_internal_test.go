package directory

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// sambaMeta is replPropertyMetaData as Samba 4.17 returned it for a user
// whose password was reset at 2026-12-08T01:03:53.576Z, cut to two records
// (objectClass, then unicodePwd).
const sambaMeta = "01000000000000000200000000000000" +
	"000000000100000078e82721030000009988d1c791d74a4e8359c0c283ed7824a90f000000000000a90f000000000000" +
	"5a0009000200000079e82721030000009988d1c791d74a4e8359c0c283ed7824ab0f000000000000ab0f000000000000"

func TestPasswordSetFromMetadata(t *testing.T) {
	blob, err := hex.DecodeString(sambaMeta)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2026, 12, 8, 1, 3, 53, 0, time.UTC)
	if got, ok := unicodePwdChange(blob); !ok || !got.Equal(want) {
		t.Errorf("unicodePwdChange = %s, %v; want %s", got, ok, want)
	}
	short := append([]byte(nil), blob[:16+48]...) // objectClass only
	binary.LittleEndian.PutUint32(short[8:], 1)
	for name, b := range map[string][]byte{"no unicodePwd": short, "empty": nil, "cut short": blob[:len(blob)-1],
		"version 2": append([]byte{2}, blob[1:]...)} {
		if got, ok := unicodePwdChange(b); ok {
			t.Errorf("%s: unicodePwdChange = %s, want none", name, got)
		}
	}
	xmlValue := "<DS_REPL_ATTR_META_DATA>\n\t<pszAttributeName>unicodePwd</pszAttributeName>\n\t<dwVersion>2</dwVersion>\n" +
		"\t<ftimeLastOriginatingChange>2026-12-08T01:03:53Z</ftimeLastOriginatingChange>\n</DS_REPL_ATTR_META_DATA>\n\x00"
	if got, ok := unicodePwdChangeXML(xmlValue); !ok || !got.Equal(want) {
		t.Errorf("unicodePwdChangeXML = %s, %v; want %s", got, ok, want)
	}
	for _, v := range []string{"<DS_REPL_ATTR_META_DATA><pszAttributeName>pwdLastSet</pszAttributeName>" +
		"<ftimeLastOriginatingChange>2026-12-08T01:03:53Z</ftimeLastOriginatingChange></DS_REPL_ATTR_META_DATA>",
		"<DS_REPL_ATTR_META_DATA><pszAttributeName>unicodePwd</pszAttributeName>" +
			"<ftimeLastOriginatingChange>1601-01-01T00:00:00Z</ftimeLastOriginatingChange></DS_REPL_ATTR_META_DATA>", "<broken"} {
		if got, ok := unicodePwdChangeXML(v); ok {
			t.Errorf("unicodePwdChangeXML(%q) = %s, want none", v, got)
		}
	}
	// Without metadata pwdLastSet answers, unless it is 0 (must change).
	set := fileTimeOf(want)
	for _, tt := range []struct {
		attrs map[string][]string
		want  time.Time
		ok    bool
	}{
		{map[string][]string{"pwdLastSet": {set}}, want, true},
		{map[string][]string{"pwdLastSet": {"0"}}, time.Time{}, false},
		{map[string][]string{attrReplMeta: {string(blob)}, "pwdLastSet": {"0"}}, want, true},
		{map[string][]string{attrReplMetaXML: {xmlValue}, "pwdLastSet": {"0"}}, want, true},
		{map[string][]string{}, time.Time{}, false},
	} {
		got, ok := adPasswordSetAt(ldap.NewEntry("CN=x", tt.attrs))
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("adPasswordSetAt(%v) = %s, %v; want %s, %v", tt.attrs, got, ok, tt.want, tt.ok)
		}
	}
}

func fileTimeOf(t time.Time) string {
	const epochDiff = 116444736000000000
	return strconv.FormatInt(t.UnixNano()/100+epochDiff, 10)
}
