package directory

import "testing"

func TestSIDCodec(t *testing.T) {
	for _, sid := range []string{"S-1-5-32-544", "S-1-5-21-3623811015-3361044348-30300820-512", "S-1-5-18", "S-1-1-0"} {
		raw, ok := encodeSID(sid)
		if !ok {
			t.Fatalf("encodeSID(%s) failed", sid)
		}
		if got, ok := decodeSID(raw); !ok || got != sid {
			t.Errorf("decodeSID(encodeSID(%s)) = %q, %v", sid, got, ok)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {1, 2, 0, 0, 0, 0, 0, 5, 1, 0, 0, 0}, {2, 0, 0, 0, 0, 0, 0, 5}} {
		if s, ok := decodeSID(bad); ok {
			t.Errorf("decodeSID(%x) = %q, want failure", bad, s)
		}
	}
	if _, ok := encodeSID("S-1-x"); ok {
		t.Error("encodeSID of a bad SID succeeded")
	}
}

func TestProtectedSID(t *testing.T) {
	for sid, want := range map[string]string{
		"S-1-5-21-1-2-3-512": "Domain Admins", "S-1-5-21-1-2-3-518": "Schema Admins", "S-1-5-21-9-9-9-519": "Enterprise Admins",
		"S-1-5-32-544": "Administrators", "S-1-5-32-548": "Account Operators", "S-1-5-32-549": "Server Operators",
		"S-1-5-32-550": "Print Operators", "S-1-5-32-551": "Backup Operators",
		"S-1-5-21-1-2-3-513": "", "S-1-5-21-1-2-3-1512": "", "S-1-5-32-545": "", "S-1-5-21-512": "", "S-1-5-33-544": "",
	} {
		name, ok := protectedSID(sid)
		if ok != (want != "") || name != want {
			t.Errorf("protectedSID(%s) = %q, %v; want %q", sid, name, ok, want)
		}
	}
}

func TestSIDFilterEscapesEveryByte(t *testing.T) {
	raw, _ := encodeSID("S-1-5-32-544")
	if got, want := sidFilter(raw), `(objectSid=\01\02\00\00\00\00\00\05\20\00\00\00\20\02\00\00)`; got != want {
		t.Errorf("sidFilter = %s, want %s", got, want)
	}
}

func TestValidateGroupSpec(t *testing.T) {
	for _, ok := range []string{"Tier0", "SMS Users", "CN=SMS Users,OU=Groups,DC=example,DC=com", "cn=x\\,y,dc=example,dc=org"} {
		if err := ValidateGroupSpec(ok); err != nil {
			t.Errorf("ValidateGroupSpec(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "a\x00b", "CN=,DC=x", " Tier0", "=x"} {
		if err := ValidateGroupSpec(bad); err == nil {
			t.Errorf("ValidateGroupSpec(%q) = nil, want an error", bad)
		}
	}
}
