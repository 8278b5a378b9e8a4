package main

// TestDocumentedCommands runs every `replyreset …` line of the shell blocks
// of README.md and docs/*.md exactly as written, with the test binary as
// replyreset (TestMain runs main), in a directory holding config.yaml for
// the embedded AD directory and an in-process SMTP server: a documented
// command can no longer be wrong. Lines of one file run in order, as a
// runbook would; `export NAME=value` lines set the environment of the
// lines after them. serve and demo run until they are ready, then get
// Ctrl-C and must exit 0.

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// docsAllowlist names documented lines that need a real external service,
// with the reason; the test checks that each is still documented.
var docsAllowlist = map[string]string{
	"replyreset migrate -config config.yaml -from /var/lib/replyreset/replyreset.db": "needs an etcd cluster (store.backend: etcd); TestMigrate* run it on the etcdlab cluster",
}

// documentedLine is one command line of a shell block.
type documentedLine struct {
	file string
	line int
	text string
}

// shellLines returns the command lines of the ```sh (bash, shell, console)
// blocks of a Markdown file: continuation lines joined, a "$ " prompt cut.
func shellLines(t *testing.T, path string) []documentedLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []documentedLine
	inShell, inBlock, pending, start := false, false, "", 0
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if !inBlock {
				lang := strings.TrimPrefix(trimmed, "```")
				inShell = lang == "sh" || lang == "bash" || lang == "shell" || lang == "console"
			}
			inBlock = !inBlock
			continue
		}
		if !inBlock || !inShell {
			continue
		}
		if pending == "" {
			start = i + 1
			trimmed = strings.TrimPrefix(trimmed, "$ ")
		}
		if cont, ok := strings.CutSuffix(trimmed, "\\"); ok {
			pending += cont + " "
			continue
		}
		out = append(out, documentedLine{file: filepath.Base(path), line: start, text: pending + trimmed})
		pending = ""
	}
	return out
}

// shellWords splits a command line as sh does for the simple lines the
// documentation holds: words, '…' and "…" quotes, a # comment. It reports
// false for what it does not run (pipes, redirections, $(…), ;, &&).
func shellWords(line string) ([]string, bool) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				return nil, false
			}
			quoted := line[i+1 : i+1+end]
			if c == '"' && strings.ContainsAny(quoted, "$`\\") {
				return nil, false
			}
			cur.WriteString(quoted)
			inWord = true
			i += end + 1
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '#' && !inWord:
			return words, true
		case strings.IndexByte("|&;<>()$`\\*?", c) >= 0:
			return nil, false
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, true
}

// replyresetArgs returns the arguments of a line that runs replyreset
// (`replyreset …` or `go run ./cmd/replyreset …`).
func replyresetArgs(words []string) ([]string, bool) {
	switch {
	case len(words) > 0 && words[0] == "replyreset":
		return words[1:], true
	case len(words) > 2 && words[0] == "go" && words[1] == "run" && (words[2] == "./cmd/replyreset" || words[2] == "./cmd/replyreset/"):
		return words[3:], true
	}
	return nil, false
}

func TestDocumentedCommands(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{"../../README.md"}, files...)
	allowed := map[string]bool{}
	ran := 0
	for _, file := range files {
		lines := shellLines(t, file)
		t.Run(filepath.Base(file), func(t *testing.T) {
			dir := filepath.Dir(writeDemoConfig(t, freePort(t)))
			env := append(os.Environ(), "REPLYRESET_TEST_RUN_MAIN=1")
			for _, l := range lines {
				words, ok := shellWords(l.text)
				if ok && len(words) > 0 && words[0] == "export" {
					env = append(env, words[1:]...)
					continue
				}
				args, isOurs := replyresetArgs(words)
				if _, skip := docsAllowlist[l.text]; skip {
					allowed[l.text] = true
					continue
				}
				if !ok {
					if strings.Contains(l.text, "replyreset ") {
						t.Errorf("%s:%d: a replyreset line the test cannot run as written (pipe, redirection, $(…)?): %s", l.file, l.line, l.text)
					}
					continue
				}
				if !isOurs {
					continue
				}
				ran++
				out, code := runDocumented(t, dir, env, args)
				if code != 0 {
					t.Errorf("%s:%d: %s\nexit %d:\n%s", l.file, l.line, l.text, code, out)
				}
			}
		})
	}
	for line, reason := range docsAllowlist {
		if !allowed[line] {
			t.Errorf("allowlisted line no longer documented: %s", line)
		}
		if reason == "" {
			t.Errorf("allowlisted line without a reason: %s", line)
		}
	}
	if ran < 10 {
		t.Errorf("only %d documented replyreset lines ran", ran)
	}
}

// readyLines say that a long-running command serves.
var readyLines = map[string]string{
	"serve": `"msg":"replyreset listening"`,
	"demo":  "Press Ctrl-C to stop.",
}

// runDocumented runs replyreset args in dir; serve and demo until ready,
// then Ctrl-C.
func runDocumented(t *testing.T, dir string, env, args []string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Dir, cmd.Env = dir, env
	ready := ""
	for _, a := range args {
		if r, ok := readyLines[a]; ok && !strings.HasPrefix(a, "-") {
			ready = r
			break
		}
	}
	if ready == "" {
		out, err := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode() + exitOf(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var out strings.Builder
	var mu sync.Mutex
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), ready) {
				once.Do(func() { close(seen) })
			}
		}
	}()
	select {
	case <-seen:
		_ = cmd.Process.Signal(syscall.SIGINT)
	case <-ctx.Done():
	}
	err = cmd.Wait()
	mu.Lock()
	defer mu.Unlock()
	return out.String(), cmd.ProcessState.ExitCode() + exitOf(err)
}

// exitOf is 1 for an error that is not an exit status (the command did
// not start, or was killed), else 0.
func exitOf(err error) int {
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		return 1
	}
	return 0
}
