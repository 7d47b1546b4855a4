// SPDX-License-Identifier: Apache-2.0

package query

import (
	"cmp"
	"container/heap"
	"slices"
)

// compareRows orders rows for a listing: by time for ByStart and ByEnd
// (earliest first), else by Counter value, largest first. Ties are 0:
// callers keep the order rows were seen in (a stable sort, as nfdump).
func compareRows(a, b *Row, o Order) int {
	switch o {
	case ByStart:
		return a.Start.Compare(b.Start)
	case ByEnd:
		return a.End.Compare(b.End)
	}
	ca, cb := a.Counter(), b.Counter()
	return cmp.Compare(cb.value(o), ca.value(o))
}

// sortRows sorts rows by o, stably.
func sortRows(rows []Row, o Order) {
	slices.SortStableFunc(rows, func(a, b Row) int { return compareRows(&a, &b, o) })
}

// Page applies offset and top (0: all) to sorted rows.
func Page(rows []Row, offset, top int) []Row {
	if offset >= len(rows) {
		return nil
	}
	rows = rows[offset:]
	if top > 0 && len(rows) > top {
		rows = rows[:top]
	}
	return rows
}

// topRows keeps the first n rows of a stable sort by o among the rows
// added, in O(n) memory: a heap whose root is the row a stable sort would
// place last (the smallest by o, the latest seen among equals).
type topRows struct {
	o    Order
	n    int
	rows []Row
	seq  []uint64
	next uint64
}

func newTopRows(o Order, n int) *topRows { return &topRows{o: o, n: n} }

func (t *topRows) Len() int { return len(t.rows) }

// Less puts the worst row at the root: sorted after the other.
func (t *topRows) Less(i, j int) bool {
	if c := compareRows(&t.rows[i], &t.rows[j], t.o); c != 0 {
		return c > 0
	}
	return t.seq[i] > t.seq[j]
}

func (t *topRows) Swap(i, j int) {
	t.rows[i], t.rows[j] = t.rows[j], t.rows[i]
	t.seq[i], t.seq[j] = t.seq[j], t.seq[i]
}

func (t *topRows) Push(x any) { panic("unused") }
func (t *topRows) Pop() any   { panic("unused") }

// add offers a row (copied).
func (t *topRows) add(w *Row) {
	s := t.next
	t.next++
	if len(t.rows) < t.n {
		t.rows = append(t.rows, *w)
		t.seq = append(t.seq, s)
		heap.Fix(t, len(t.rows)-1)
		return
	}
	// A later row replaces the root only when strictly better: among
	// equals, the earlier seen stays ahead.
	if compareRows(w, &t.rows[0], t.o) >= 0 {
		return
	}
	t.rows[0], t.seq[0] = *w, s
	heap.Fix(t, 0)
}

// sorted returns the kept rows in stable-sort order.
func (t *topRows) sorted() []Row {
	idx := make([]int, len(t.rows))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := compareRows(&t.rows[a], &t.rows[b], t.o); c != 0 {
			return c
		}
		return cmp.Compare(t.seq[a], t.seq[b])
	})
	out := make([]Row, len(idx))
	for i, k := range idx {
		out[i] = t.rows[k]
	}
	return out
}
