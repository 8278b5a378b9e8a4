package enroll

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		in, region, want string
	}{
		// United States
		{"+1 (201) 555-0123", "US", "+12015550123"},
		{"(201) 555-0123", "US", "+12015550123"},
		{"201-555-0123", "US", "+12015550123"},
		{"201.555.0123", "US", "+12015550123"},
		{"2015550123", "US", "+12015550123"},
		{"1 201 555 0123", "US", "+12015550123"},
		{"+12015550123", "", "+12015550123"},
		{"+1 201 555 0123", "FR", "+12015550123"},
		{"001 201 555 0123", "FR", "+12015550123"},
		{"tel:+1-201-555-0123", "", "+12015550123"},
		{"TEL: +1 201 555 0123", "us", "+12015550123"},
		{"  +1\u00a0201\u00a0555\u00a00123\t", " us ", "+12015550123"},
		{"+1 613 555 0181", "US", "+16135550181"}, // Canada shares +1
		// France
		{"06 12 34 56 78", "FR", "+33612345678"},
		{"06.12.34.56.78", "FR", "+33612345678"},
		{"06-12-34-56-78", "FR", "+33612345678"},
		{"+33 6 12 34 56 78", "FR", "+33612345678"},
		{"+33 (0)6 12 34 56 78", "US", "+33612345678"},
		{"0033 6 12 34 56 78", "FR", "+33612345678"},
		{"0033 6 12 34 56 78", "US", "+33612345678"}, // 00 works where the IDD is 011
		{"011 33 6 12 34 56 78", "US", "+33612345678"},
		{"01 23 45 67 89", "FR", "+33123456789"}, // landline: allowed (voice)
		{"０６１２３４５６７８", "FR", "+33612345678"},
		{"٠٦١٢٣٤٥٦٧٨", "FR", "+33612345678"},
		{"＋３３ ６ １２ ３４ ５６ ７８", "", "+33612345678"},
		{"06–12–34–56–78", "FR", "+33612345678"}, // en dashes
		// United Kingdom
		{"07400 123456", "GB", "+447400123456"},
		{"+44 7400 123456", "US", "+447400123456"},
		{"+44 (0)7400 123456", "US", "+447400123456"},
		{"0044 7400 123456", "DE", "+447400123456"},
		{"020 7946 0958", "GB", "+442079460958"},
		{"(020) 7946-0958", "GB", "+442079460958"},
		// Germany
		{"0151 23456789", "DE", "+4915123456789"},
		{"0151/23456789", "DE", "+4915123456789"},
		{"+49 151 2345 6789", "", "+4915123456789"},
		{"+49 (0)151 2345 6789", "GB", "+4915123456789"},
		{"030 1234567", "DE", "+49301234567"},
		{"[030] 123 45 67", "DE", "+49301234567"},
	}
	for _, tt := range tests {
		got, err := NormalizePhone(tt.in, tt.region)
		if err != nil || got != tt.want {
			t.Errorf("NormalizePhone(%q, %q) = %q, %v; want %q", tt.in, tt.region, got, err, tt.want)
		}
	}
}

func TestNormalizePhoneErrors(t *testing.T) {
	tests := []struct {
		name, in, region string
		reason           error
		inMsg            string // substring of the message
	}{
		{"empty", "", "US", ErrPhoneEmpty, "empty"},
		{"blank", " \t ", "US", ErrPhoneEmpty, "empty"},
		{"letters", "hello", "US", ErrPhoneNotNumber, "unexpected character 'h'"},
		{"vanity", "1-800-FLOWERS", "US", ErrPhoneNotNumber, "unexpected character"},
		{"extension", "+1 201 555 0123 x12", "US", ErrPhoneNotNumber, "unexpected character 'x'"},
		{"emoji", "📞📞📞", "US", ErrPhoneNotNumber, "unexpected character"},
		{"emoji inside", "+33 6 12 34 56 78 😀", "FR", ErrPhoneNotNumber, "unexpected character"},
		{"keycap digits", "0️⃣6️⃣1️⃣2️⃣3️⃣4️⃣5️⃣6️⃣7️⃣8️⃣", "FR", ErrPhoneNotNumber, "unexpected character"},
		{"plus in the middle", "33+612345678", "FR", ErrPhoneNotNumber, "only allowed at the start"},
		{"two pluses", "++33612345678", "FR", ErrPhoneNotNumber, "only allowed at the start"},
		{"punctuation only", "(--)", "US", ErrPhoneNotNumber, "no digits"},
		{"very long", strings.Repeat("1", 10000), "US", ErrPhoneNotNumber, "too long"},
		{"too many digits", "+1 234 567 890 123 456 789 012", "US", ErrPhoneNotNumber, "too many digits"},
		{"invalid utf-8", "+33 6\xff12345678", "FR", ErrPhoneNotNumber, "UTF-8"},
		{"no country code", "06 12 34 56 78", "", ErrPhoneNotNumber, "no country code"},
		{"unknown country code", "+999 1234 5678", "", ErrPhoneNotNumber, "country code"},
		{"too short FR", "+33 6 12", "US", ErrPhoneInvalid, "for FR (+33)"},
		{"bad US area code", "555-555-0101", "US", ErrPhoneInvalid, "for US (+1)"},
		{"short code", "112", "DE", ErrPhoneInvalid, "for DE (+49)"},
		{"bad GB national", "0 12", "GB", ErrPhoneInvalid, "for GB"},
		{"SQL", "'; DROP TABLE users;--", "US", ErrPhoneNotNumber, "unexpected character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizePhone(tt.in, tt.region)
			if err == nil {
				t.Fatalf("NormalizePhone(%q) = %q, want an error", tt.in, got)
			}
			if !errors.Is(err, tt.reason) || !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q: want errors.Is %v and ErrInvalid", err, tt.reason)
			}
			var pe *PhoneError
			if !errors.As(err, &pe) {
				t.Errorf("error %q is not a *PhoneError", err)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("error %q does not say %q", err, tt.inMsg)
			}
			if len(tt.in) > 5 && strings.Contains(err.Error(), tt.in) {
				t.Errorf("error %q repeats the input", err)
			}
		})
	}
}

func TestNormalizePhoneUnknownRegion(t *testing.T) {
	_, err := NormalizePhone("06 12 34 56 78", "XX")
	if err == nil || !strings.Contains(err.Error(), `unknown default region "XX"`) {
		t.Fatalf("err = %v, want unknown default region", err)
	}
}

func TestPhoneCountry(t *testing.T) {
	tests := map[string]string{
		"+12015550123":   "US",
		"+16135550181":   "CA",
		"+33612345678":   "FR",
		"+447400123456":  "GB",
		"+4915123456789": "DE",
		"+80012345678":   "", // non-geographic
		"+9991234":       "",
		"0612345678":     "",
		"":               "",
		"+":              "",
	}
	for in, want := range tests {
		if got := PhoneCountry(in); got != want {
			t.Errorf("PhoneCountry(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKnownRegion(t *testing.T) {
	for code, want := range map[string]bool{"US": true, "FR": true, "GB": true, "DE": true, "XX": false, "us": false, "": false} {
		if got := KnownRegion(code); got != want {
			t.Errorf("KnownRegion(%q) = %v, want %v", code, got, want)
		}
	}
}

func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+1 (201) 555-0123", "06 12 34 56 78", "0033 6 12 34 56 78",
		"tel:+44 (0)20 7946 0958", "0151/23456789", "", "📞", "+", "00", "011 33 6 12 34 56 78",
		"０６１２３４５６７８", "+800 1234 5678", "+999 1", "1-800-FLOWERS"} {
		for _, r := range []string{"US", "FR", "GB", "DE", ""} {
			f.Add(s, r)
		}
	}
	f.Fuzz(func(t *testing.T, in, region string) {
		out, err := NormalizePhone(in, region)
		if err != nil {
			if out != "" {
				t.Fatalf("NormalizePhone(%q, %q) = %q with error %v", in, region, out, err)
			}
			return
		}
		if !isE164(out) {
			t.Fatalf("NormalizePhone(%q, %q) = %q: not E.164", in, region, out)
		}
		again, err := NormalizePhone(out, region)
		if err != nil || again != out {
			t.Fatalf("NormalizePhone(%q) = %q, %v; want it to re-normalise to itself", out, again, err)
		}
		_ = PhoneCountry(out)
	})
}
