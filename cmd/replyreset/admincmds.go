package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
)

// currentUser names the person running a CLI command for the audit trail,
// even where $USER is unset (cron, systemd, docker exec).
func currentUser() string {
	return osUser()
}

func osUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return fmt.Sprintf("uid-%d", os.Getuid())
}

// writeJSONList prints list as an indented JSON array ([] rather than null
// when empty, for scripts).
func writeJSONList[T any](w io.Writer, list []T) error {
	if list == nil {
		list = []T{}
	}
	return writeJSON(w, list)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
