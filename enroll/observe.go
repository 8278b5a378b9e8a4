package enroll

// StoreObserver is told what a BoltStore durably wrote, for metrics: every
// audit event appended, and every outbox message whose status was set or
// changed. Calls come after the commit, outside the transaction, from the
// writing goroutine; they must be quick and must not call the store.
type StoreObserver interface {
	AuditAppended(ev Event)
	MessageUpdated(m OutboundMessage)
}

// SetObserver installs o (nil removes it); safe at any time.
func (s *BoltStore) SetObserver(o StoreObserver) {
	if o == nil {
		s.obs.Store(nil)
		return
	}
	s.obs.Store(&o)
}

func (s *BoltStore) observeAudit(ev Event) {
	if o := s.obs.Load(); o != nil {
		(*o).AuditAppended(ev)
	}
}

func (s *BoltStore) observeMessage(m OutboundMessage) {
	if o := s.obs.Load(); o != nil {
		m.Sealed = nil // an observer never needs the body
		(*o).MessageUpdated(m)
	}
}
