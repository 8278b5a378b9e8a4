package strictyaml

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The file's behaviour as a whole (every message of the configuration
// file) is tested in cmd/replyreset's config tests; these pin the rules
// that decide where yaml.v3 stops and the check pass starts.

type sample struct {
	Name  string         `yaml:"name"`
	On    bool           `yaml:"on"`
	Count int            `yaml:"count"`
	Every time.Duration  `yaml:"every"`
	Days  []int          `yaml:"days"`
	Per   map[string]int `yaml:"per"`
	Inner struct {
		Level string `yaml:"level"`
		Size  int    `yaml:"size"`
	} `yaml:"inner"`
}

func decode(t *testing.T, in string, env map[string]string) (sample, []string) {
	t.Helper()
	v := sample{Name: "default", Days: []int{1, 2}}
	doc, problems := Decode([]byte(in), &v, testEnv(env))
	if doc == nil && len(problems) == 0 {
		t.Fatal("no Doc and no problem")
	}
	var lines []string
	for _, p := range problems {
		lines = append(lines, p.Error())
	}
	return v, lines
}

func testEnv(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		s, ok := env[name]
		return s, ok
	}
}

func wantProblems(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

// TestScalarRulesStricterThanYAML: what yaml.v3 alone would accept into a
// bool, an int or a duration, and the file must not.
func TestScalarRulesStricterThanYAML(t *testing.T) {
	for in, want := range map[string]string{
		"on: yes":      `line 1: on: "yes" is not true or false`,
		"on: off":      `line 1: on: "off" is not true or false`,
		"count: 0x1f":  `line 1: count: "0x1f" is not a whole number`,
		"count: 5_87":  `line 1: count: "5_87" is not a whole number`,
		"count: 1.5":   `line 1: count: "1.5" is not a whole number`,
		"count: 0o17":  `line 1: count: "0o17" is not a whole number`,
		"every: 30":    `line 1: every: "30" is not a duration (e.g. 30s, 5m)`,
		"days: [1, x]": `line 1: days[1]: "x" is not a whole number`,
	} {
		_, got := decode(t, in, nil)
		wantProblems(t, got, want)
	}
	// ...and what it would refuse that the file allows: a quoted number, a
	// leading zero (decimal, not octal), TRUE in any case.
	v, got := decode(t, "count: \"010\"\non: TRUE\nname: yes\nevery: 1m30s\n", nil)
	wantProblems(t, got)
	if v.Count != 10 || !v.On || v.Name != "yes" || v.Every != 90*time.Second {
		t.Errorf("decoded %+v", v)
	}
}

// TestExpansionNeverInjectsKeys: a value from the environment that looks
// like YAML stays one value; keys are never expanded.
func TestExpansionNeverInjectsKeys(t *testing.T) {
	secret := "x\ncount: 99\ninner: {level: root}\n\"quote"
	v, got := decode(t, "name: ${SECRET}\ninner: {level: \"${SECRET}\"}\n", map[string]string{"SECRET": secret})
	wantProblems(t, got)
	if v.Name != secret || v.Inner.Level != secret || v.Count != 0 {
		t.Errorf("decoded %+v", v)
	}
	_, got = decode(t, "${KEY}: 1\n", map[string]string{"KEY": "count"})
	wantProblems(t, got, `line 1: ["${KEY}"]: unknown key`)
}

// TestEveryProblemAtOnce: a repeated key does not hide an unknown one
// (yaml.v3's own strict decoder stops at the mapping with the repeat), and
// what was reported keeps its default while the rest decodes.
func TestEveryProblemAtOnce(t *testing.T) {
	v, got := decode(t, "name: a\nname: b\ncolour: blue\ninner: {levl: x, size: 2}\ncount: x\non: true\n", nil)
	wantProblems(t, got,
		"line 2: name: set twice (first on line 1)",
		"line 3: colour: unknown key",
		"line 4: inner.levl: unknown key (did you mean level?)",
		`line 5: count: "x" is not a whole number`,
	)
	if v.Name != "a" || v.Inner.Size != 2 || v.Count != 0 || !v.On {
		t.Errorf("decoded %+v", v)
	}
}

// TestNullsAndEmptyItems: a null keeps the default; an empty list item
// keeps its place (yaml.v3 alone would drop it and shift the rest).
func TestNullsAndEmptyItems(t *testing.T) {
	v, got := decode(t, "name: ~\ndays:\n  - 4\n  -\n  - 6\nper: {FR: ~, US: 2}\n", nil)
	wantProblems(t, got)
	if v.Name != "default" || !slices.Equal(v.Days, []int{4, 0, 6}) || !reflect.DeepEqual(v.Per, map[string]int{"FR": 0, "US": 2}) {
		t.Errorf("decoded %+v", v)
	}
	v, _ = decode(t, "days: ~\n", nil)
	if !slices.Equal(v.Days, []int{1, 2}) {
		t.Errorf("days: ~ gave %v, want the default", v.Days)
	}
}

// TestAnchorsCheckedWhereUsed: an anchored value is checked and decoded
// at each place it is used, and a merge source shared by two mappings is
// not changed by the keys one of them overrides.
func TestAnchorsCheckedWhereUsed(t *testing.T) {
	v, got := decode(t, "name: &v \"7\"\ncount: *v\ninner: {level: *v, size: *v}\n", nil)
	wantProblems(t, got)
	if v.Name != "7" || v.Count != 7 || v.Inner.Level != "7" || v.Inner.Size != 7 {
		t.Errorf("decoded %+v", v)
	}
	// A shared mapping is checked at each use; what came from the
	// environment is not expanded a second time.
	env := map[string]string{"A": "${B}", "B": "no"}
	var shared struct {
		X sample `yaml:"x"`
		Y sample `yaml:"y"`
	}
	if _, problems := Decode([]byte("x: &s {name: \"${A}\", count: \"010\"}\ny: *s\n"), &shared, testEnv(env)); len(problems) > 0 {
		t.Fatal(problems[0])
	}
	if shared.X.Name != "${B}" || shared.Y.Name != "${B}" || shared.Y.Count != 10 {
		t.Errorf("shared mapping: %+v", shared)
	}
	_, got = decode(t, "name: &v seven\ncount: *v\n", nil)
	wantProblems(t, got, `line 1: count: "seven" is not a whole number`)

	type two struct {
		A struct {
			X int `yaml:"x"`
			Y int `yaml:"y"`
		} `yaml:"a"`
		B struct {
			X int `yaml:"x"`
			Y int `yaml:"y"`
		} `yaml:"b"`
	}
	var w two
	if _, problems := Decode([]byte("a: {<<: &s {x: 1, y: 2}, x: 5}\nb: {<<: *s}\n"), &w, nil); len(problems) > 0 {
		t.Fatal(problems[0])
	}
	if w.A.X != 5 || w.A.Y != 2 || w.B.X != 1 || w.B.Y != 2 {
		t.Errorf("merges: %+v", w)
	}
}

// TestMergeBomb: nested merges work; an alias bomb of them is checked
// once per shared mapping and stopped by yaml.v3's alias limit.
func TestMergeBomb(t *testing.T) {
	nest := func(levels int) string {
		var b strings.Builder
		b.WriteString("a0: &a0 {level: x}\n")
		for i := 1; i <= levels; i++ {
			fmt.Fprintf(&b, "a%d: &a%d {<<: [*a%d, *a%d, *a%d]}\n", i, i, i-1, i-1, i-1)
		}
		fmt.Fprintf(&b, "inner: {<<: *a%d}\n", levels)
		return b.String()
	}
	v, got := decode(t, nest(3), nil)
	if len(got) != 4 || !strings.Contains(got[0], "a0: unknown key") || v.Inner.Level != "x" {
		t.Errorf("3 levels: %+v %q", v, got)
	}
	_, got = decode(t, nest(40), nil)
	if last := got[len(got)-1]; last != "the file is too large or expands too many aliases" {
		t.Errorf("40 levels: %q", got)
	}
}
