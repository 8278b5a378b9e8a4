package strictyaml

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Doc says where each key path of a decoded file was and which paths
// failed, so that later checks can give lines and not repeat a problem.
type Doc struct {
	lines  map[string]int  // key path → line
	failed map[string]bool // key paths already reported
}

// Line is the line of path in the file, 0 if it was not there.
func (d *Doc) Line(path string) int { return d.lines[path] }

// Reported says whether path, or a key above it, already has a problem.
func (d *Doc) Reported(path string) bool {
	for p := range d.failed {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return true
		}
	}
	return false
}

// MarkReported records that path (and what is under it) has a problem.
func (d *Doc) MarkReported(path string) { d.failed[path] = true }

// Decode decodes data, one YAML document holding a mapping, over the
// defaults already in *v, a pointer to a struct whose fields have yaml
// tags (lists hold single values). A null ("key:", "key: ~") keeps the
// default.
//
// One pass over the parsed node tree checks every key and value against
// the field it goes to and reports each problem with its key path:
// unknown and repeated keys, wrong kinds, and scalars by rules stricter
// than yaml.v3's (a boolean is true or false, not yes or on; a whole
// number is decimal, not 0x1f, 5_87 or 1.5; a duration has a unit). It
// expands ${NAME} with lookupEnv in the values of the tree, never in keys
// nor in the file as text; puts each checked value back in canonical form
// and removes what it reported. yaml.v3 then decodes the tree into v.
//
// A nil Doc means the file could not be read as YAML at all.
func Decode(data []byte, v any, lookupEnv func(string) (string, bool)) (*Doc, []*Problem) {
	root, problem := parse(data)
	if problem != nil {
		return nil, []*Problem{problem}
	}
	c := &checker{Doc: Doc{lines: map[string]int{}, failed: map[string]bool{}}, lookupEnv: lookupEnv,
		seen: map[visit]bool{}, checked: map[*yaml.Node]bool{}}
	if root == nil {
		return &c.Doc, nil
	}
	c.value(root, "", reflect.TypeOf(v).Elem())
	if err := root.Decode(v); err != nil {
		// What a checked tree can still hold: an alias bomb, or an anchor
		// that merges itself.
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if strings.Contains(msg, "excessive aliasing") {
			msg = "the file is too large or expands too many aliases"
		}
		c.problems = append(c.problems, &Problem{Msg: msg})
	}
	return &c.Doc, c.problems
}

var lineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse returns the root mapping of the single document in data, or nil
// for an empty file.
func parse(data []byte) (*yaml.Node, *Problem) {
	var root *yaml.Node
	for dec := yaml.NewDecoder(bytes.NewReader(data)); ; {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		} else if err != nil {
			p := &Problem{Msg: strings.TrimPrefix(err.Error(), "yaml: "), Err: err}
			if m := lineError.FindStringSubmatch(err.Error()); m != nil {
				p.Line, _ = strconv.Atoi(m[1])
				p.Msg = m[2]
			}
			return nil, p
		}
		n := &doc
		if len(doc.Content) == 1 {
			n = doc.Content[0]
		}
		switch {
		case root == nil:
			root = n
		case !isNull(n): // a stray --- or ... with nothing after it is fine
			return nil, &Problem{Line: doc.Line, Msg: "the file must hold one YAML document; remove the second (---)"}
		}
	}
	if root == nil || isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Problem{Line: root.Line, Msg: "the file must be a YAML mapping of settings (key: value)"}
	}
	return root, nil
}

type checker struct {
	Doc
	lookupEnv func(string) (string, bool)
	problems  []*Problem
	seen      map[visit]bool      // a mapping is checked once per key path
	checked   map[*yaml.Node]bool // scalars put back: expanded already
}

type visit struct {
	n    *yaml.Node
	path string
}

var durationType = reflect.TypeFor[time.Duration]()

func (c *checker) fail(n *yaml.Node, path, format string, a ...any) bool {
	c.problems = append(c.problems, &Problem{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, a...)})
	c.failed[path] = true
	return false
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// value checks n for a field of type t at path and returns what yaml.v3
// is to decode there, or nil. A scalar comes back as a checked copy, so
// an anchored value is checked afresh wherever it is used.
func (c *checker) value(n *yaml.Node, path string, t reflect.Type) *yaml.Node {
	ok := true
	switch target, k := deref(n), t.Kind(); {
	case isNull(target):
	case k == reflect.Struct || k == reflect.Map:
		ok = c.mapping(target, path, t, nil, false)
	case k == reflect.Slice:
		ok = c.sequence(target, path, t)
	default:
		return c.scalar(target, path, t)
	}
	if !ok {
		return nil
	}
	return n
}

// mapping checks a struct's settings or a map's entries and drops from n
// the pairs it reported, and a struct's null ones (so the default stays).
// It checks the mappings merged in with << too, but not their keys that a
// mapping merging them sets (skip).
func (c *checker) mapping(n *yaml.Node, path string, t reflect.Type, skip map[string]int, merged bool) bool {
	if c.seen[visit{n, path}] {
		return true // an alias merged again: checked already
	}
	c.seen[visit{n, path}] = true
	if n.Kind != yaml.MappingNode {
		what := "a mapping of settings (key: value)"
		if t.Kind() == reflect.Map {
			what = "a mapping (key: value)"
		}
		return c.fail(n, path, "must be %s, not %s", what, describe(n))
	}
	keys := map[string]int{}
	var kept, merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, k, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			c.fail(k, path, "keys must be plain names, not %s", describe(k))
			continue
		}
		child := JoinPath(path, keyPath(k.Value))
		if line, dup := keys[k.Value]; dup {
			c.fail(k, child, "set twice (first on line %d)", line)
			continue
		}
		keys[k.Value] = k.Line
		ft, names := field(t, k.Value)
		if _, set := skip[k.Value]; set {
			kept = append(kept, k, v) // yaml.v3 will not decode it either
			continue
		} else if ft == nil {
			hint := ""
			if s := suggest(k.Value, names); s != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", s)
			}
			c.problems = append(c.problems, &Problem{Line: k.Line, Path: child, Msg: "unknown key" + hint})
			continue
		}
		if _, ok := c.lines[child]; !ok || !merged {
			c.lines[child] = k.Line
		}
		if v = c.value(v, child, ft); v != nil && (t.Kind() == reflect.Map || !isNull(deref(v))) {
			kept = append(kept, k, v)
		}
	}
	maps.Copy(keys, skip)
	for i := 0; i < len(merges); i += 2 {
		if c.merge(merges[i+1], path, t, keys) {
			kept = append(kept, merges[i], merges[i+1])
		}
	}
	n.Content = kept
	return true
}

// merge checks what a << key merges in: a mapping or a list of them.
func (c *checker) merge(src *yaml.Node, path string, t reflect.Type, skip map[string]int) bool {
	sources := []*yaml.Node{src}
	if src = deref(src); src.Kind == yaml.SequenceNode {
		sources = src.Content
	} else if src.Kind != yaml.MappingNode {
		return c.fail(src, path, "<< must merge a mapping, not %s", describe(src))
	}
	ok := true
	for _, s := range sources {
		if s = deref(s); s.Kind != yaml.MappingNode {
			ok = c.fail(s, path, "<< must merge mappings, not %s", describe(s))
		} else {
			c.mapping(s, path, t, skip, true)
		}
	}
	return ok
}

// field returns the type of a struct field or map entry named key, or
// nil and the names a struct knows.
func field(t reflect.Type, key string) (reflect.Type, []string) {
	if t.Kind() == reflect.Map {
		return t.Elem(), nil
	}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == key {
			return t.Field(i).Type, nil
		}
		names = append(names, name)
	}
	return nil, names
}

func (c *checker) sequence(n *yaml.Node, path string, t reflect.Type) bool {
	if n.Kind != yaml.SequenceNode {
		return c.fail(n, path, "must be a list, e.g. [a, b], not %s", describe(n))
	}
	zero := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: fmt.Sprint(reflect.Zero(t.Elem()))}
	for i, item := range n.Content {
		child := fmt.Sprintf("%s[%d]", path, i)
		c.lines[child] = item.Line
		if item = c.value(item, child, t.Elem()); item == nil || isNull(deref(item)) {
			// yaml.v3 would drop the item and shift the next ones: keep
			// its place with the zero value.
			item = c.scalar(zero, child, t.Elem())
		}
		if item != nil {
			n.Content[i] = item
		}
	}
	return true
}

// scalar checks a single value, expanding ${NAME} first, and returns a
// copy with the value and tag yaml.v3 needs to decode it as checked.
func (c *checker) scalar(n *yaml.Node, path string, t reflect.Type) *yaml.Node {
	if n.Kind != yaml.ScalarNode {
		c.fail(n, path, "must be a single value, not %s", describe(n))
		return nil
	}
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp", "!!merge":
	default:
		c.fail(n, path, "the YAML tag %s is not supported here", tag)
		return nil
	}
	s, ok := c.expand(n, path)
	if !ok {
		return nil
	}
	expanded, tag, problem := s, "!!str", ""
	switch k := t.Kind(); {
	case t == durationType:
		if _, err := time.ParseDuration(s); err != nil {
			problem = "is not a duration (e.g. 30s, 5m)"
		}
	case k == reflect.String:
	case k == reflect.Bool:
		tag, s = "!!bool", strings.ToLower(s)
		if s != "true" && s != "false" {
			problem = "is not true or false"
		}
	case k >= reflect.Int && k <= reflect.Int64:
		i, err := strconv.ParseInt(s, 10, t.Bits())
		tag, s = "!!int", strconv.FormatInt(i, 10)
		if err != nil {
			problem = "is not a whole number"
		}
	case k == reflect.Float32 || k == reflect.Float64:
		f, err := strconv.ParseFloat(s, t.Bits())
		tag, s = "!!float", strconv.FormatFloat(f, 'g', -1, t.Bits())
		if err != nil || f != f || f > 1e300 || f < -1e300 {
			problem = "is not a number"
		}
	default:
		problem = "cannot be decoded into " + t.String() // a bug in a section type
	}
	if problem == "" {
		n = &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s, Line: n.Line, Column: n.Column}
		c.checked[n] = true
		return n
	}
	shown := strconv.Quote(n.Value)
	if expanded != n.Value {
		// The value came (at least partly) from the environment and may
		// be a secret: show the reference, not the value.
		shown += " (after expansion)"
	}
	c.fail(n, path, "%s %s", shown, problem)
	return nil
}

// expand replaces each ${NAME} in a scalar value. Anything else with a $
// ($NAME, $$, a lone $ or ${ in a password) is left as it is.
func (c *checker) expand(n *yaml.Node, path string) (string, bool) {
	s := n.Value
	if c.checked[n] || !strings.Contains(s, "${") {
		return s, true
	}
	var b strings.Builder
	ok := true
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			break
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 || !isEnvName(s[i+2:i+end]) {
			b.WriteString(s[:i+1]) // not a reference: keep the $ and go on
			s = s[i+1:]
			continue
		}
		name := s[i+2 : i+end]
		val, set := c.lookupEnv(name)
		if !set {
			c.fail(n, path, "environment variable %s is not set", name)
			ok = false
		}
		b.WriteString(s[:i])
		b.WriteString(val)
		s = s[i+end+1:]
	}
	return b.String(), ok
}

func isEnvName(s string) bool {
	for i, r := range s {
		if !(r == '_' || 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || i > 0 && '0' <= r && r <= '9') {
			return false
		}
	}
	return s != ""
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return strconv.Quote(v)
}
