package record

import (
	"slices"
	"sort"
)

// Window is a sliding window's record (a rate limit, a budget, a guard's
// attempts): the window of the key's last use, so that a purge can drop
// old hits without knowing the caller's policy, and the hit times still
// inside it, ascending, in Unix ns. A refused hit is not recorded, so
// there are never more hits than the limit.
type Window struct {
	Window int64   `json:"window"`
	Hits   []int64 `json:"hits"`
}

// Keep drops the hits that have left the window ending at now: a hit
// counts while now-Window < hit.
func (w *Window) Keep(now int64) {
	first := sort.Search(len(w.Hits), func(i int) bool { return w.Hits[i] > now-w.Window })
	w.Hits = w.Hits[first:]
}

// Add records a hit at at, in order even if callers' clocks step back.
func (w *Window) Add(at int64) {
	i := sort.Search(len(w.Hits), func(i int) bool { return w.Hits[i] > at })
	w.Hits = slices.Insert(w.Hits, i, at)
}

// Room sets the window to window, drops the hits outside it at now and
// reports whether fewer than limit remain (one more hit is allowed).
func (w *Window) Room(now, window int64, limit int) bool {
	w.Window = window
	w.Keep(now)
	return len(w.Hits) < limit
}

// Allow records a hit at now when the window has room for it (Room), and
// reports whether it did.
func (w *Window) Allow(now, window int64, limit int) bool {
	if !w.Room(now, window, limit) {
		return false
	}
	w.Add(now)
	return true
}

// Remove takes back one hit at exactly at and reports whether there was one.
func (w *Window) Remove(at int64) bool {
	i := slices.Index(w.Hits, at)
	if i < 0 {
		return false
	}
	w.Hits = slices.Delete(w.Hits, i, i+1)
	return true
}

// Count is the number of hits within (now-window, now].
func (w Window) Count(now, window int64) int {
	n := 0
	for _, h := range w.Hits {
		if h > now-window && h <= now {
			n++
		}
	}
	return n
}

// Purge drops the hits outside the window at now and says what a purge
// does with the record: drop it (no hit left), rewrite it (fewer hits), or
// leave it (neither).
func (w *Window) Purge(now int64) (drop, changed bool) {
	n := len(w.Hits)
	w.Keep(now)
	return len(w.Hits) == 0, len(w.Hits) < n
}
