package record

// Guard is a guarded key's record: the end of its block (0 when none) and
// the window of its counted attempts. The attempts that started a block
// stay with it (a refund of one lifts it) and go when it ends.
type Guard struct {
	Until int64 `json:"until,omitempty"` // Unix ns
	Window
}

// BlockedAt reports whether the key is blocked at t (Unix ns).
func (g Guard) BlockedAt(t int64) bool { return g.Until > t }

// Attempt counts an attempt at now (Unix ns) against limit attempts per
// window, blocking until blockEnd when it is the limit-th. A blocked key
// counts nothing. It returns whether the attempt may go ahead and the end
// of the block that is on after it (0 for none); the record changed only
// when allowed.
func (g *Guard) Attempt(now, window int64, limit int, blockEnd int64) (allowed bool, until int64) {
	if g.BlockedAt(now) {
		return false, g.Until
	}
	if g.Until != 0 { // a block has ended: counting starts afresh
		*g = Guard{}
	}
	g.Window.Window = window
	g.Keep(now)
	g.Add(now)
	if len(g.Hits) >= limit {
		g.Until = blockEnd
	}
	return true, g.Until
}

// Refund takes back the attempt counted at at and lifts the block it
// helped start, if that is still on at now. It reports whether the record
// changed; once changed, a record with no attempt left is deleted.
func (g *Guard) Refund(at, now int64) bool {
	if g.Until != 0 && !g.BlockedAt(now) {
		return false // the block ended, and its attempts with it
	}
	if !g.Remove(at) {
		return false
	}
	g.Until = 0
	return true
}

// Purge says what a purge at now does with the record: drop it (its
// block ended, or no attempt is left in the window), rewrite it (fewer
// attempts) or leave it (a live block keeps its attempts).
func (g *Guard) Purge(now int64) (drop, changed bool) {
	switch {
	case g.BlockedAt(now):
		return false, false
	case g.Until != 0:
		return true, true
	}
	return g.Window.Purge(now)
}
