package jsoncanon

import (
	"bytes"
	"cmp"
	"slices"
)

// maxIndex is the largest array index, 2^32 - 2: JavaScript orders member names that are
// array indices numerically before the others, and "4294967295" is no index.
const maxIndex = 1<<32 - 2

// arrayIndex reports whether a member name, as written between its quotes, is an array
// index in canonical form ("0", "42"; not "01", "-1" or "1.0"), and its value.
func arrayIndex(name []byte) (uint32, bool) {
	if len(name) == 0 || len(name) > 10 || name[0] == '0' && len(name) > 1 {
		return 0, false
	}
	var n uint64
	for _, c := range name {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > maxIndex {
		return 0, false
	}
	return uint32(n), true
}

// smallObject is the most members whose names are compared pairwise to find a repeat;
// larger objects sort their names.
const smallObject = 16

// closeObject ends object f: when JavaScript would order its members otherwise (a name
// that is an array index, or a name sent twice), it writes them again in that order.
func (w *writer) closeObject(out []byte, f *frame) []byte {
	ms := w.members[f.first:]
	if f.reorder || w.repeats(out, ms) {
		out = w.reorder(out, f, ms)
	}
	w.members = w.members[:f.first]
	return append(out, '}')
}

func name(out []byte, m member) []byte { return out[m.key:m.colon] }

// repeats reports whether a member name comes twice in ms. Names are compared as written:
// a string has one canonical form.
func (w *writer) repeats(out []byte, ms []member) bool {
	if len(ms) <= smallObject {
		for i := 1; i < len(ms); i++ {
			for j := range i {
				// Names of different lengths differ: most pairs are told apart here.
				if ms[i].colon-ms[i].key == ms[j].colon-ms[j].key && bytes.Equal(name(out, ms[i]), name(out, ms[j])) {
					return true
				}
			}
		}
		return false
	}
	w.sortByName(out, ms)
	for i := 1; i < len(w.order); i++ {
		if bytes.Equal(name(out, ms[w.order[i]]), name(out, ms[w.order[i-1]])) {
			return true
		}
	}
	return false
}

// sortByName fills w.order with the indices of ms sorted by name, members of one name in
// the order sent.
func (w *writer) sortByName(out []byte, ms []member) {
	w.order = w.order[:0]
	for i := range ms {
		w.order = append(w.order, int32(i))
	}
	slices.SortStableFunc(w.order, func(a, b int32) int {
		return bytes.Compare(name(out, ms[a]), name(out, ms[b]))
	})
}

// reorder writes the members of object f again as JSON.parse and JSON.stringify leave
// them: array indices ascending, then the other names in the order sent; a repeated name
// at its first position with its last value.
func (w *writer) reorder(out []byte, f *frame, ms []member) []byte {
	w.sortByName(out, ms)
	// One entry per name: its first member's position, its last member's value.
	pairs := w.pairs[:0]
	for i := 0; i < len(w.order); {
		j := i + 1
		for j < len(w.order) && bytes.Equal(name(out, ms[w.order[j]]), name(out, ms[w.order[i]])) {
			j++
		}
		pairs = append(pairs, [2]int32{w.order[i], w.order[j-1]})
		i = j
	}
	w.pairs = pairs
	slices.SortFunc(pairs, func(a, b [2]int32) int {
		ma, mb := ms[a[0]], ms[b[0]]
		switch {
		case ma.isIndex && mb.isIndex:
			return cmp.Compare(ma.index, mb.index)
		case ma.isIndex != mb.isIndex:
			if ma.isIndex {
				return -1
			}
			return 1
		}
		return cmp.Compare(a[0], b[0])
	})

	body := f.start + 1
	w.scratch = append(w.scratch[:0], out[body:]...)
	out = out[:body]
	for i, p := range pairs {
		if i > 0 {
			out = append(out, ',')
		}
		first, last := ms[p[0]], ms[p[1]]
		out = append(out, w.scratch[first.key-body:first.colon-body]...)
		out = append(out, w.scratch[last.colon-body:last.end-body]...)
	}
	return out
}
