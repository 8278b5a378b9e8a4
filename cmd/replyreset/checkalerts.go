package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/replyreset/replyreset/directory"
)

// warnAlertsReachNobody warns when security alerts (NOT ME, lockout
// storms, SIM swaps, SMS budgets, refused privileged accounts) would reach
// nobody: mail is off, or admin.alert_mail is empty and no member of
// directory.admin_group has a mail address. It reads the admin group, so
// it says nothing with --offline.
func warnAlertsReachNobody(ctx context.Context, cfg *Config, dial bool) []string {
	const nobody = "security alerts (NOT ME, lockout storms, SIM swaps, SMS budgets) reach nobody: "
	switch {
	case !dial || len(cfg.Admin.AlertMail) > 0 && cfg.Mail.Enabled():
		return nil
	case !cfg.Mail.Enabled():
		return []string{nobody + "mail is not configured (mail.host)"}
	case cfg.Directory.AdminGroup == "":
		return []string{nobody + "admin.alert_mail is empty and directory.admin_group is not set"}
	}
	dir, err := directory.New(cfg.Directory, directory.Options{})
	if err != nil {
		return nil // the directory lines above said why
	}
	defer dir.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.Directory.Timeout+5*time.Second)
	defer cancel()
	admins, err := dir.AdminContacts(ctx)
	if err != nil {
		return []string{fmt.Sprintf("cannot tell whether security alerts reach anyone (set admin.alert_mail): listing directory.admin_group: %v",
			strings.Join(strings.Fields(err.Error()), " "))}
	}
	for _, u := range admins {
		if strings.TrimSpace(u.Mail) != "" {
			return nil
		}
	}
	return []string{nobody + "admin.alert_mail is empty and no member of directory.admin_group has a mail address"}
}
