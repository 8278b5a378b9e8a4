package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/replyreset/replyreset/enroll"
)

// The data file belongs to one process at a time (bbolt locks it). So that
// the helpdesk can run `enroll`, `enrollments`, `audit`... while the gateway
// serves, `serve` listens on a control socket in data_dir (mode 0600, so
// only the service's own user and root reach it) and runs those commands
// in-process, with its own store and directory. A command that finds the
// socket answering sends its command line there instead of opening the
// file; the output and exit code come back unchanged.

const controlSocketName = "control.sock"

func controlSocket(cfg *Config) string { return filepath.Join(cfg.DataDir, controlSocketName) }

// cmdEnv is where a command runs: in the CLI process (server nil), or inside
// a running server for a forwarded command line.
type cmdEnv struct {
	server *app
	actor  string // the CLI user of a forwarded command
}

// serverRunningError says a server holds the data file; run() forwards.
type serverRunningError struct{ socket string }

func (e *serverRunningError) Error() string {
	return "the data file is held by a running replyreset server (control socket " + e.socket + ")"
}

// user names the person running the command, for the audit trail.
func (env *cmdEnv) user() string {
	if env.actor != "" {
		return env.actor
	}
	return currentUser()
}

// loadStore loads the --config file and opens its store (openStore).
func (env *cmdEnv) loadStore(path string) (enroll.Store, func(), error) {
	cfg, err := loadConfigFlag(path)
	if err != nil {
		return nil, nil, err
	}
	return env.openStore(cfg)
}

// openStore returns the store for cfg and a release function.
func (env *cmdEnv) openStore(cfg *Config) (enroll.Store, func(), error) {
	if env.server != nil {
		if err := env.sameDataDir(cfg); err != nil {
			return nil, nil, err
		}
		return env.server.store, func() {}, nil
	}
	sock := controlSocket(cfg)
	if controlAnswers(sock) {
		return nil, nil, &serverRunningError{socket: sock}
	}
	if err := openDataDir(cfg.DataDir, slog.Default()); err != nil {
		return nil, nil, err
	}
	b, _, err := openSealedStore(context.Background(), cfg)
	if err != nil {
		return nil, nil, err
	}
	return b.Store, b.Close, nil
}

func (env *cmdEnv) sameDataDir(cfg *Config) error {
	mine, _ := filepath.Abs(env.server.cfg.DataDir)
	theirs, _ := filepath.Abs(cfg.DataDir)
	if mine != theirs {
		return fmt.Errorf("this configuration's data_dir (%s) is not the running server's (%s)", theirs, mine)
	}
	return nil
}

// controlAnswers reports whether a server listens on the socket.
func controlAnswers(sock string) bool {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

type controlRequest struct {
	Args  []string `json:"args"`
	Actor string   `json:"actor"`
}

type controlResponse struct {
	Code   int    `json:"code"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

// forward runs args inside the server listening on sock.
func forward(ctx context.Context, sock string, args []string, stdout, stderr io.Writer) int {
	args = absoluteConfig(args)
	body, _ := json.Marshal(controlRequest{Args: args, Actor: currentUser()})
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://replyreset/run", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(stderr, "replyreset: %v\n", err)
		return 1
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "replyreset: the running server did not take the command: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	var out controlResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		fmt.Fprintf(stderr, "replyreset: bad answer from the running server: %v\n", err)
		return 1
	}
	io.WriteString(stdout, out.Stdout)
	io.WriteString(stderr, out.Stderr)
	return out.Code
}

// absoluteConfig rewrites what the server would read differently from
// the caller: the file paths -config and -o (backup) become absolute, since
// the server's working directory is not the caller's, and a date given to
// -since or -until (audit) becomes RFC 3339 at the caller's midnight, since
// the server's time zone may not be the caller's.
func absoluteConfig(args []string) []string {
	out := append([]string(nil), args...)
	rewrite := map[string]func(string) string{
		"config": absPath,
		"o":      absPath,
		"output": absPath,
		"since":  localDate,
		"until":  localDate,
	}
	for i := 0; i < len(out); i++ {
		name, value, hasValue := strings.Cut(strings.TrimLeft(out[i], "-"), "=")
		fn, ok := rewrite[name]
		if !ok || !strings.HasPrefix(out[i], "-") {
			continue
		}
		switch {
		case hasValue:
			out[i] = strings.TrimSuffix(out[i], value) + fn(value)
		case i+1 < len(out):
			out[i+1] = fn(out[i+1])
			i++
		}
	}
	return out
}

func absPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return abs
}

// localDate turns a date (2006-01-02) into RFC 3339 at local midnight and
// leaves anything else as it is.
func localDate(v string) string {
	if t, err := time.ParseInLocation(time.DateOnly, v, time.Local); err == nil {
		return t.Format(time.RFC3339)
	}
	return v
}

// serveControl listens on the control socket until ctx ends.
func serveControl(ctx context.Context, a *app, log *slog.Logger) (func(), error) {
	sock := controlSocket(a.cfg)
	if controlAnswers(sock) {
		return nil, fmt.Errorf("another replyreset server already runs on %s", a.cfg.DataDir)
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /run", func(w http.ResponseWriter, r *http.Request) {
		var req controlRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || len(req.Args) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var stdout, stderr bytes.Buffer
		code := runIn(&cmdEnv{server: a, actor: req.Actor}, r.Context(), req.Args, &stdout, &stderr)
		log.Info("control command", "command", req.Args[0], "actor", req.Actor, "exit", code)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(controlResponse{Code: code, Stdout: stdout.String(), Stderr: stderr.String()})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		os.Remove(sock)
	}, nil
}
