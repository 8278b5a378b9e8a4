package storetest

import (
	"reflect"
	"testing"

	"github.com/replyreset/replyreset/enroll"
)

// TestEveryStoreMethodHasACase fails when a method joins enroll.Store
// without a suite case naming it in covers (or covers names a method or a
// case that no longer exists).
func TestEveryStoreMethodHasACase(t *testing.T) {
	if err := MissingCases(); err != nil {
		t.Error(err)
	}
	contract := reflect.TypeOf((*enroll.Store)(nil)).Elem()
	t.Logf("enroll.Store has %d methods; the suite has %d cases", contract.NumMethod(), len(suiteCases(nil)))
}

// TestMissingCasesSeesAGap: MissingCases reports a method without a case
// and a case that does not exist, so the check above cannot pass vacuously.
func TestMissingCasesSeesAGap(t *testing.T) {
	saved := covers["Ping"]
	t.Cleanup(func() { covers["Ping"] = saved })
	delete(covers, "Ping")
	if err := MissingCases(); err == nil {
		t.Error("MissingCases with Ping uncovered: nil, want an error naming Ping")
	}
	covers["Ping"] = []string{"Ping/NoSuchCase"}
	if err := MissingCases(); err == nil {
		t.Error("MissingCases with a case that does not exist: nil, want an error")
	}
}
