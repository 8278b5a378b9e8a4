package demodir

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/jimlambrt/gldap"
)

// maxPageSize is AD's MaxPageSize: the most entries one search (or one
// page of a paged search) returns.
const maxPageSize = 1000

// routes builds the request router of one listener.
func (s *Server) routes(l *listener, tc *tls.Config) (*gldap.Mux, error) {
	mux, err := gldap.NewMux()
	if err != nil {
		return nil, fmt.Errorf("demodir: %w", err)
	}
	errs := []error{
		mux.Bind(s.handleBind(l)),
		mux.Search(s.handleSearch(l)),
		mux.Modify(s.handleModify(l)),
		mux.Add(s.handleAdd(l)),
		mux.Delete(s.handleDelete(l)),
		mux.ExtendedOperation(s.handleStartTLS(l, tc), gldap.ExtendedOperationStartTLS),
		mux.DefaultRoute(s.handleUnknown),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("demodir: routes: %w", err)
	}
	return mux, nil
}

// resultOf splits an error into code, diagnostic and matched DN.
func resultOf(lerr *ldapError) (code int, msg, matched string) {
	if lerr == nil {
		return gldap.ResultSuccess, "", ""
	}
	return lerr.code, lerr.msg, lerr.matched
}

func (s *Server) write(w *gldap.ResponseWriter, r *gldap.Request, app int, lerr *ldapError) {
	code, msg, matched := resultOf(lerr)
	resp := r.NewResponse(gldap.WithApplicationCode(app), gldap.WithResponseCode(code),
		gldap.WithDiagnosticMessage(msg), gldap.WithMatchedDN(matched))
	if err := w.Write(resp); err != nil {
		s.log.Debug("demo directory: write response", "err", err)
	}
}

// checkControls refuses a critical control the server does not support.
func checkControls(controls []gldap.Control) *ldapError {
	for _, c := range controls {
		if cs, ok := c.(*gldap.ControlString); ok && cs.Criticality && !slices.Contains(supportedControls, cs.ControlType) {
			return errUnavailableCritical(cs.ControlType)
		}
	}
	return nil
}

func (s *Server) handleBind(l *listener) gldap.HandlerFunc {
	return func(w *gldap.ResponseWriter, r *gldap.Request) {
		id := r.ConnectionID()
		var lerr *ldapError
		defer func() {
			code, msg, _ := resultOf(lerr)
			resp := r.NewBindResponse(gldap.WithResponseCode(code))
			resp.SetDiagnosticMessage(msg)
			if err := w.Write(resp); err != nil {
				s.log.Debug("demo directory: write bind response", "err", err)
			}
		}()
		m, err := r.GetSimpleBindMessage()
		if err != nil {
			lerr = &ldapError{code: gldap.ResultProtocolError, msg: err.Error()}
			return
		}
		// Whatever the outcome, the connection is anonymous until a bind succeeds.
		l.setBound(id, "")
		if m.Password == "" {
			return // anonymous, or an unauthenticated bind: anonymous too
		}
		if !l.principal(id).tls {
			lerr = errStrongAuth()
			return
		}
		e, lerr2 := s.store.bind(m.UserName, string(m.Password))
		if lerr2 != nil {
			lerr = lerr2
			s.log.Debug("demo directory: bind refused", "name", m.UserName, "result", lerr.code, "diagnostic", strings.TrimRight(lerr.msg, "\x00"))
			return
		}
		l.setBound(id, e.key)
		s.log.Debug("demo directory: bind", "dn", e.dn)
	}
}

func (s *Server) handleSearch(l *listener) gldap.HandlerFunc {
	return func(w *gldap.ResponseWriter, r *gldap.Request) {
		var lerr *ldapError
		var doneControls []gldap.Control
		defer func() {
			code, msg, matched := resultOf(lerr)
			done := r.NewSearchDoneResponse(gldap.WithResponseCode(code))
			done.SetDiagnosticMessage(msg)
			done.SetMatchedDN(matched)
			if len(doneControls) > 0 {
				done.SetControls(doneControls...)
			}
			if err := w.Write(done); err != nil {
				s.log.Debug("demo directory: write search done", "err", err)
			}
		}()
		m, err := r.GetSearchMessage()
		if err != nil {
			lerr = &ldapError{code: gldap.ResultProtocolError, msg: err.Error()}
			return
		}
		if lerr = checkControls(m.Controls); lerr != nil {
			return
		}
		var paging *gldap.ControlPaging
		for _, c := range m.Controls {
			if p, ok := c.(*gldap.ControlPaging); ok {
				paging = p
			}
		}
		req, lerr2 := compileSearch(m)
		if lerr2 != nil {
			lerr = lerr2
			return
		}
		send := func(res result) {
			e := r.NewSearchResponseEntry(res.dn)
			for _, a := range res.attrs {
				e.AddAttribute(a.name, a.vals)
			}
			if err := w.Write(e); err != nil {
				s.log.Debug("demo directory: write entry", "err", err)
			}
		}
		if m.BaseDN == "" && m.Scope == gldap.BaseObject {
			send(s.store.rootDSE(req, s.host))
			return
		}
		id := r.ConnectionID()
		if l.principal(id).key == "" {
			lerr = errNotBound()
			return
		}
		if paging != nil {
			lerr, doneControls = s.pagedSearch(l, id, m, req, paging, send)
			return
		}
		keys, lerr2 := s.store.find(req)
		if lerr2 != nil {
			lerr = lerr2
			return
		}
		limit := maxPageSize
		if m.SizeLimit > 0 && m.SizeLimit < int64(limit) {
			limit = int(m.SizeLimit)
		}
		if len(keys) > limit {
			keys = keys[:limit]
			lerr = &ldapError{code: gldap.ResultSizeLimitExceeded}
		}
		for _, k := range keys {
			if res, ok := s.store.render(k, req); ok {
				send(res)
			}
		}
	}
}

// pagedSearch serves one page of a paged search.
func (s *Server) pagedSearch(l *listener, id int, m *gldap.SearchMessage, req searchRequest, paging *gldap.ControlPaging,
	send func(result)) (*ldapError, []gldap.Control) {
	fingerprint := strings.Join(append([]string{m.BaseDN, strconv.Itoa(int(m.Scope)), m.Filter, strconv.FormatBool(m.TypesOnly)}, m.Attributes...), "\x00")
	var cur *cursor
	if len(paging.Cookie) == 0 {
		keys, lerr := s.store.find(req)
		if lerr != nil {
			return lerr, nil
		}
		cur = &cursor{fingerprint: fingerprint, keys: keys, sizeLimit: int(m.SizeLimit)}
	} else {
		cur = l.takeCursor(id, string(paging.Cookie))
		if cur == nil || cur.fingerprint != fingerprint {
			return &ldapError{code: gldap.ResultUnwillingToPerform,
				msg: "00000057: LdapErr: DSID-0C09098B, comment: Error processing control (paged results cookie), data 0, v3839\x00"}, nil
		}
	}
	size := int(paging.PagingSize)
	if size == 0 && len(paging.Cookie) > 0 {
		return nil, []gldap.Control{&gldap.ControlPaging{}} // the client abandons the search
	}
	if size <= 0 || size > maxPageSize {
		size = maxPageSize
	}
	var lerr *ldapError
	page := cur.keys[:min(size, len(cur.keys))]
	if cur.sizeLimit > 0 && cur.sent+len(page) > cur.sizeLimit {
		page = page[:cur.sizeLimit-cur.sent]
		lerr = &ldapError{code: gldap.ResultSizeLimitExceeded}
	}
	for _, k := range page {
		if res, ok := s.store.render(k, req); ok {
			send(res)
		}
	}
	cur.sent += len(page)
	cur.keys = cur.keys[len(page):]
	done := &gldap.ControlPaging{}
	if lerr == nil && len(cur.keys) > 0 {
		done.Cookie = []byte(l.putCursor(id, cur))
	}
	return lerr, []gldap.Control{done}
}

// setValues decodes the values of a modify change: gldap hands over the
// encoded SET OF AttributeValue, so each value is one BER octet string.
func setValues(raw []string) ([]string, error) {
	var vals []string
	for _, v := range raw {
		rd := bytes.NewReader([]byte(v))
		for rd.Len() > 0 {
			p, err := ber.ReadPacket(rd)
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("modify value: %w", err)
			}
			if p.ClassType != ber.ClassUniversal || p.Tag != ber.TagOctetString {
				return nil, fmt.Errorf("modify value: not an octet string")
			}
			vals = append(vals, p.Data.String())
		}
	}
	return vals, nil
}

func (s *Server) handleModify(l *listener) gldap.HandlerFunc {
	return func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetModifyMessage()
		if err != nil {
			s.write(w, r, gldap.ApplicationModifyResponse, &ldapError{code: gldap.ResultProtocolError, msg: err.Error()})
			return
		}
		if lerr := checkControls(m.Controls); lerr != nil {
			s.write(w, r, gldap.ApplicationModifyResponse, lerr)
			return
		}
		permissive := slices.ContainsFunc(m.Controls, func(c gldap.Control) bool { return c.GetControlType() == oidPermissiveModify })
		s.hinted.Store(strings.ToLower(m.DN), slices.ContainsFunc(m.Controls, func(c gldap.Control) bool {
			return c.GetControlType() == oidPolicyHints || c.GetControlType() == oidPolicyHintsDeprecated
		}))
		var changes []change
		names := make([]string, 0, len(m.Changes))
		for _, c := range m.Changes {
			vals, err := setValues(c.Modification.Vals)
			if err != nil {
				s.write(w, r, gldap.ApplicationModifyResponse, &ldapError{code: gldap.ResultProtocolError, msg: err.Error()})
				return
			}
			changes = append(changes, change{op: c.Operation, attr: c.Modification.Type, vals: vals})
			names = append(names, c.Modification.Type)
		}
		lerr := s.store.modify(l.principal(r.ConnectionID()), m.DN, changes, permissive)
		code, _, _ := resultOf(lerr)
		s.log.Debug("demo directory: modify", "dn", m.DN, "attributes", names, "result", code)
		s.write(w, r, gldap.ApplicationModifyResponse, lerr)
	}
}

func (s *Server) handleAdd(l *listener) gldap.HandlerFunc {
	return func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetAddMessage()
		if err != nil {
			s.write(w, r, gldap.ApplicationAddResponse, &ldapError{code: gldap.ResultProtocolError, msg: err.Error()})
			return
		}
		if lerr := checkControls(m.Controls); lerr != nil {
			s.write(w, r, gldap.ApplicationAddResponse, lerr)
			return
		}
		_, lerr := s.store.add(l.principal(r.ConnectionID()), m.DN, m.Attributes)
		code, _, _ := resultOf(lerr)
		s.log.Debug("demo directory: add", "dn", m.DN, "result", code)
		s.write(w, r, gldap.ApplicationAddResponse, lerr)
	}
}

func (s *Server) handleDelete(l *listener) gldap.HandlerFunc {
	return func(w *gldap.ResponseWriter, r *gldap.Request) {
		m, err := r.GetDeleteMessage()
		if err != nil {
			s.write(w, r, gldap.ApplicationDelResponse, &ldapError{code: gldap.ResultProtocolError, msg: err.Error()})
			return
		}
		if lerr := checkControls(m.Controls); lerr != nil {
			s.write(w, r, gldap.ApplicationDelResponse, lerr)
			return
		}
		lerr := s.store.del(l.principal(r.ConnectionID()), m.DN)
		code, _, _ := resultOf(lerr)
		s.log.Debug("demo directory: delete", "dn", m.DN, "result", code)
		s.write(w, r, gldap.ApplicationDelResponse, lerr)
	}
}

// handleStartTLS upgrades an ldap:// connection (RFC 4511 4.14). gldap
// serves a StartTLS request before it reads the next one.
func (s *Server) handleStartTLS(l *listener, tc *tls.Config) gldap.HandlerFunc {
	return func(w *gldap.ResponseWriter, r *gldap.Request) {
		id := r.ConnectionID()
		resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
		resp.SetResponseName(gldap.ExtendedOperationStartTLS)
		if l.principal(id).tls {
			resp.SetResultCode(gldap.ResultOperationsError)
			resp.SetDiagnosticMessage("00000000: LdapErr: DSID-0C091120, comment: Error initializing SSL/TLS, data 0, v3839\x00")
			_ = w.Write(resp)
			return
		}
		if err := w.Write(resp); err != nil {
			s.log.Debug("demo directory: write StartTLS response", "err", err)
			return
		}
		if err := r.StartTLS(tc); err != nil {
			s.log.Debug("demo directory: StartTLS handshake failed", "err", err)
			return
		}
		l.setTLS(id)
	}
}

// handleUnknown answers the extended operations AD does not know.
func (s *Server) handleUnknown(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultProtocolError))
	resp.SetDiagnosticMessage("0000203D: LdapErr: DSID-0C091116, comment: Unknown extended request OID, data 0, v3839\x00")
	_ = w.Write(resp)
}
