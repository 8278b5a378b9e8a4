// Package storetest is the conformance suite every enroll.Store
// implementation must pass: the bbolt store today, an etcd store when the
// gateway runs on more than one machine. It pins down the behaviour callers
// rely on (the phone index, case-insensitive usernames, atomic
// check-and-insert, the sliding window, durability) so that implementations
// cannot drift apart.
//
// Use it from the implementation's tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, dir string) enroll.Store {
//			s, err := bolt.Open(filepath.Join(dir, "replyreset.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		}, func(t *testing.T, dir string, backup []byte) {
//			if err := os.WriteFile(filepath.Join(dir, "replyreset.db"), backup, 0o600); err != nil {
//				t.Fatal(err)
//			}
//		})
//	}
//
// Every method of enroll.Store has cases here; MissingCases (run by the
// suite itself) fails when one has none.
package storetest
