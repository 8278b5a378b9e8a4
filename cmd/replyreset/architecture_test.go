package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// maxPackageFiles is the most non-test .go files a package may have.
const maxPackageFiles = 20

// TestArchitectureMapsEveryPackage holds ARCHITECTURE.md's package map to
// the tree: every directory with Go code has a row, and every row names a
// directory that has Go code, so the map cannot rot as packages move; and
// no package grows past maxPackageFiles non-test files.
func TestArchitectureMapsEveryPackage(t *testing.T) {
	const root = "../.."
	data, err := os.ReadFile(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	mapped := map[string]bool{}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_/]+)` \\|")
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		mapped[m[1]] = true
	}
	if len(mapped) == 0 {
		t.Fatal("ARCHITECTURE.md has no package map rows (| `pkg` | owns |)")
	}
	present := map[string]bool{}
	files := map[string]int{} // non-test .go files per package directory
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			present[filepath.ToSlash(rel)] = true
			if !strings.HasSuffix(path, "_test.go") {
				files[filepath.ToSlash(rel)]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, stale []string
	for p := range present {
		if !mapped[p] {
			missing = append(missing, p)
		}
	}
	for p := range mapped {
		if !present[p] {
			stale = append(stale, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("packages missing from ARCHITECTURE.md's package map: %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("ARCHITECTURE.md maps packages that no longer exist: %v", stale)
	}
	// A package past 20 files holds more than its one-sentence doc says.
	for p, n := range files {
		if n > maxPackageFiles {
			t.Errorf("package %s has %d non-test .go files, more than %d: split it by responsibility", p, n, maxPackageFiles)
		}
	}
}
