package directory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// pool keeps bound service-account connections. A connection is used by one
// caller at a time. New connections go to the first URL that answers, in
// configuration order; a connection to a fallback server is retired after
// fallbackTTL so traffic returns to the preferred server once it is back.
type pool struct {
	d           dialer
	urls        []string
	sem         chan struct{} // one slot per open connection
	fallbackTTL time.Duration

	mu     sync.Mutex
	idle   []*pooledConn
	closed bool
}

type pooledConn struct {
	conn   *ldap.Conn
	url    int // index into urls
	born   time.Time
	reused bool
}

func newPool(d dialer, size int, fallbackTTL time.Duration) *pool {
	return &pool{d: d, urls: d.cfg.URLs, sem: make(chan struct{}, size), fallbackTTL: fallbackTTL}
}

var errPoolClosed = fmt.Errorf("%w: client closed", ErrUnavailable)

func (p *pool) get(ctx context.Context) (*pooledConn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for a connection: %w", ErrUnavailable, ctx.Err())
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.sem
		return nil, errPoolClosed
	}
	for len(p.idle) > 0 {
		pc := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if pc.conn.IsClosing() || (pc.url > 0 && time.Since(pc.born) > p.fallbackTTL) {
			pc.conn.Close()
			continue
		}
		p.mu.Unlock()
		pc.reused = true
		return pc, nil
	}
	p.mu.Unlock()

	var errs []error
	for i, u := range p.urls {
		conn, err := p.d.dialBound(ctx, u)
		if err == nil {
			return &pooledConn{conn: conn, url: i, born: time.Now()}, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	<-p.sem
	// One kind for the caller: TLS when every server failed on TLS (a
	// configuration problem), otherwise unavailable.
	kind := ErrTLS
	for _, err := range errs {
		if !errors.Is(err, ErrTLS) {
			kind = ErrUnavailable
		}
	}
	return nil, fmt.Errorf("%w: no directory server could be used: %v", kind, errors.Join(errs...))
}

// put returns pc to the pool, or closes it when the operation's error says
// the connection is broken.
func (p *pool) put(pc *pooledConn, opErr error) {
	defer func() { <-p.sem }()
	if opErr != nil && (errors.Is(opErr, ErrUnavailable) || errors.Is(opErr, ErrTLS) || pc.conn.IsClosing()) {
		pc.conn.Close()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		pc.conn.Close()
		return
	}
	p.idle = append(p.idle, pc)
}

// do runs fn on a pooled connection. A network failure on a connection that
// had been idle in the pool (the server may have dropped it) is retried once
// on a fresh connection.
func (p *pool) do(ctx context.Context, fn func(*ldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		pc, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = fn(pc.conn)
		reused := pc.reused // once put back, pc belongs to the next caller
		p.put(pc, err)
		if err != nil && attempt == 0 && reused && errors.Is(err, ErrUnavailable) && ctx.Err() == nil {
			continue
		}
		return err
	}
}

func (p *pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, pc := range p.idle {
		pc.conn.Close()
	}
	p.idle = nil
}
