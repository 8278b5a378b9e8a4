package etcd

import (
	"context"
	"fmt"
	"time"
)

// Health is the store's state for /healthz.
type Health struct {
	Backend string   `json:"backend"` // "etcd"
	Members []Member `json:"members"`
	// Reachable counts the members that answered.
	Reachable int `json:"reachable"`
}

// Member is one member of the cluster as seen from this node.
type Member struct {
	Name      string   `json:"name"`
	ID        uint64   `json:"id"`
	ClientURL []string `json:"client_urls"`
	Reachable bool     `json:"reachable"`
	Leader    bool     `json:"leader"`
	Error     string   `json:"error,omitempty"`
}

// statusTimeout bounds the status request to one member, so that a dead
// member does not use up the whole health check.
const statusTimeout = 2 * time.Second

// Health lists the cluster's members (MemberList) and asks each for its
// status on its first client URL: reachable or not, leader or not. The
// error is set when the member list itself cannot be had (no quorum
// reachable): it wraps ErrUnavailable.
func (s *Store) Health(ctx context.Context) (Health, error) {
	end, err := s.begin(ctx)
	if err != nil {
		return Health{Backend: "etcd"}, err
	}
	defer end()
	h := Health{Backend: "etcd"}
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	list, err := s.cli.MemberList(rctx)
	if err != nil {
		return h, fmt.Errorf("enroll: etcd member list: %w", s.clientErr(ctx, err))
	}
	for _, m := range list.Members {
		mem := Member{Name: m.Name, ID: m.ID, ClientURL: m.ClientURLs}
		if len(m.ClientURLs) == 0 {
			mem.Error = "no client URL (not started yet)"
			h.Members = append(h.Members, mem)
			continue
		}
		sctx, scancel := context.WithTimeout(ctx, min(s.timeout, statusTimeout))
		st, err := s.cli.Status(sctx, m.ClientURLs[0])
		scancel()
		if err != nil {
			mem.Error = s.clientErr(ctx, err).Error()
		} else {
			mem.Reachable = true
			mem.Leader = st.Leader == m.ID
			h.Reachable++
		}
		h.Members = append(h.Members, mem)
	}
	return h, nil
}
