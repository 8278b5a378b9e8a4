package strictyaml

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Problem is one problem with the file. Join returns an errors.Join of
// them, which prints one problem per line.
type Problem struct {
	Line int    // 1-based line in the file; 0 when unknown, e.g. a missing key
	Path string // full key path, e.g. "directory.urls[1]"; empty for the file as a whole
	Msg  string
	Err  error // the underlying cause, if any (e.g. the *fs.PathError of a secret file)
}

func (e *Problem) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	// One problem per line, whatever a value or an OS error holds.
	return oneLine.Replace(b.String())
}

var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

func (e *Problem) Unwrap() error { return e.Err }

// maxProblems keeps a file of garbage from printing thousands of lines.
const maxProblems = 100

// Join puts problems in file order (those with no line, such as missing
// keys, last and in the order given) and joins at most maxProblems of them.
func Join(problems []*Problem) error {
	slices.SortStableFunc(problems, func(a, b *Problem) int {
		return cmp.Compare(lineOrLast(a.Line), lineOrLast(b.Line))
	})
	joined := make([]error, 0, min(len(problems), maxProblems+1))
	for i, e := range problems {
		if i == maxProblems {
			joined = append(joined, &Problem{Msg: fmt.Sprintf("… and %d more problems", len(problems)-i)})
			break
		}
		joined = append(joined, e)
	}
	return errors.Join(joined...)
}

func lineOrLast(line int) int {
	if line == 0 {
		return math.MaxInt
	}
	return line
}

// JoinPath appends a key path element ("urls", "[1]") to a parent path.
func JoinPath(parent, child string) string {
	switch {
	case parent == "":
		return child
	case child == "":
		return parent
	case strings.HasPrefix(child, "["):
		return parent + child
	}
	return parent + "." + child
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyPath writes a key as a path element, quoting odd ones.
func keyPath(key string) string {
	if plainKey.MatchString(key) {
		return key
	}
	return fmt.Sprintf("[%q]", key)
}

// suggest returns the known name closest to a mistyped key, if close enough.
func suggest(key string, names []string) string {
	best, bestDist := "", max(2, len(key)/4)+1
	for _, name := range names {
		if dist := editDistance(strings.ToLower(key), name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return len(a) + len(b)
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, sub)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
