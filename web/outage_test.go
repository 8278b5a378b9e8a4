package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replyreset/replyreset/directory"
	"github.com/replyreset/replyreset/enroll"
	"github.com/replyreset/replyreset/enroll/enrolltest"
)

// deadDirectory is a directory.Client whose server is down: "closed" is a
// loopback port nobody listens on (connection refused at once), "blackhole"
// accepts TCP and never answers (only the client's timeout ends a call).
func deadDirectory(t *testing.T, kind string) *directory.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	switch kind {
	case "closed":
		ln.Close()
	case "blackhole":
		var mu sync.Mutex
		var conns []net.Conn
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c) // held open, never read or written
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			ln.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
	}
	cfg := directory.DefaultConfig()
	cfg.URLs = []string{"ldap://" + addr}
	cfg.BindDN, cfg.BindPassword = "CN=svc,DC=example,DC=com", "x"
	cfg.BaseDN = "DC=example,DC=com"
	cfg.AdminGroup = "CN=Helpdesk,DC=example,DC=com"
	cfg.Timeout = time.Second // bounds the blackhole's wait; nothing is asserted on time
	dir, err := directory.New(cfg, directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	return dir
}

// TestDirectoryOutageAnswer (issue 14 finding 8): with the directory down
// (a closed port) or hung (a blackhole), the admin sign-in, the phone
// change sign-in and the API answer the same: 503 and "try again in a few
// minutes", an HTML page in the person's language with the request ID, or
// JSON under /api/.
func TestDirectoryOutageAnswer(t *testing.T) {
	for _, kind := range []string{"closed", "blackhole"} {
		t.Run(kind, func(t *testing.T) {
			dir := deadDirectory(t, kind)
			store, sealer, catalog, pages := testData(t)
			log := &enrolltest.LogBuffer{}
			logger := slog.New(slog.NewJSONHandler(log, nil))
			svc := enroll.NewService(enroll.ServiceDeps{Store: store, Directory: dir, Mailer: &enrolltest.Mailer{},
				Mails: &enrolltest.Renderer{}, Messages: catalog, Sealer: sealer, Log: logger},
				enroll.ServiceSettings{Config: enroll.DefaultConfig(), PublicURL: "http://127.0.0.1", DefaultLanguage: "en",
					DefaultRegion: "US"})
			h := NewEcho(Deps{Logger: logger, Pages: pages, Enrollment: svc, Store: store, PublicURL: "http://127.0.0.1",
				Language: "en", PhoneChange: svc,
				AdminDirectory: dir, AdminService: svc, Admin: AdminConfig{SessionTTL: time.Hour}})

			for _, lang := range []string{"en", "fr"} {
				b := newHTTPBrowser(t, h, lang)
				for _, c := range []struct{ page, post, text string }{
					{"/admin/login", "/admin/login", "admin.err.directory"},
					{"/phone/change", "/phone/change/signin", "err.unavailable.text"},
				} {
					b.get(c.page)
					r := b.post(c.post, url.Values{"username": {"jdoe"}, "password": {"Some#Pass1"}})
					r.want(t, lang+" "+c.post, http.StatusServiceUnavailable, `<html lang="`+lang+`">`,
						htmlText(pages.Text(lang, c.text, nil)), htmlText(pages.Text(lang, "error.reference",
							map[string]string{"id": r.header.Get("X-Request-Id")})))
				}
			}
			if !strings.Contains(log.String(), "request_id") {
				t.Errorf("the cause is not logged with the request ID:\n%s", log.String())
			}

			// The token is made while its owner's directory answers (the
			// same store and key); the outage then hits its owner check.
			maker := enroll.NewService(enroll.ServiceDeps{Store: store, Sealer: sealer, Messages: catalog, Log: logger,
				Mailer: &enrolltest.Mailer{}, Mails: &enrolltest.Renderer{},
				Directory: enrolltest.AdminUsers{Users: enrolltest.Users{"helpdeskadmin": {Username: "helpdeskadmin"}},
					Admins: map[string]bool{"helpdeskadmin": true}}},
				enroll.ServiceSettings{Config: enroll.DefaultConfig(), PublicURL: "http://127.0.0.1", DefaultLanguage: "en",
					DefaultRegion: "US"})
			secret, _, err := maker.CreateToken(context.Background(),
				enroll.TokenSpec{Name: "outage", Owner: "helpdeskadmin", Scopes: []string{enroll.ScopeRead}}, "cli:test")
			if err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/api/v1/users?q=jdoe", "/api/v1/lockouts"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.Header.Set("Authorization", "Bearer "+secret)
				req.Header.Set("Accept", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				var body apiErrorBody
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusServiceUnavailable ||
					body.Error.Code != "directory_unavailable" || body.Error.Message != directoryUnavailableMessage {
					t.Errorf("GET %s: %d %s, want 503 directory_unavailable", path, rec.Code, rec.Body)
				}
			}
		})
	}
}
