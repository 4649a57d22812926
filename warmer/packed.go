package warmer

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// packed holds a record's data fields in one string, each as its length
// (a uvarint) and its bytes: one allocation a record instead of one a
// field and a slice of string headers, which at 500k sessions was most of
// the warmer's memory. Two records with the same fields pack to the same
// string, so an unchanged entity is found with one comparison.
type packed string

// pack packs fields.
func pack(fields []string) packed {
	var lenBuf [binary.MaxVarintLen64]byte
	n := 0
	for _, f := range fields {
		n += binary.PutUvarint(lenBuf[:], uint64(len(f))) + len(f)
	}
	var b strings.Builder
	b.Grow(n) // exactly: the string is the one allocation
	for _, f := range fields {
		b.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(f)))])
		b.WriteString(f)
	}
	return packed(b.String())
}

// A record is also packed field by field into a buffer of the caller's
// (appendPacked, appendPackedInt, appendPackedJoined), with no string
// made for a field that Vista sent as a number or a list: at 500k
// sessions those strings, and the slice pack takes, were a tenth of what
// a cold load allocated.

// appendPacked appends field f to b, as pack does.
func appendPacked(b []byte, f string) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return append(b, f...)
}

// appendPackedInt appends field n, in decimal, to b.
func appendPackedInt(b []byte, n int) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], int64(n), 10)
	b = binary.AppendUvarint(b, uint64(len(d)))
	return append(b, d...)
}

// appendPackedJoined appends one field to b: list joined by sep.
func appendPackedJoined(b []byte, list []string, sep byte) []byte {
	n := max(len(list)-1, 0)
	for _, v := range list {
		n += len(v)
	}
	b = binary.AppendUvarint(b, uint64(n))
	for i, v := range list {
		if i > 0 {
			b = append(b, sep)
		}
		b = append(b, v...)
	}
	return b
}

// get returns field i ("" past the last).
func (p packed) get(i int) string {
	s := string(p)
	for {
		if s == "" {
			return ""
		}
		n, w := uvarint(s)
		s = s[w:]
		if i == 0 {
			return s[:n]
		}
		s = s[n:]
		i--
	}
}

// getEach sets out[j] to field at[j] ("" past the last), in one walk:
// a sweep reads four fields of every session it answers for.
func (p packed) getEach(at []int, out []string) {
	clear(out)
	s, left := string(p), len(at)
	for i := 0; s != "" && left > 0; i++ {
		n, w := uvarint(s)
		s = s[w:]
		for j, a := range at {
			if a == i {
				out[j] = s[:n]
				left--
			}
		}
		s = s[n:]
	}
}

// all returns the fields.
func (p packed) all() []string {
	out := make([]string, 0, 16) // every kind's fields fit

	s := string(p)
	for s != "" {
		n, w := uvarint(s)
		s = s[w:]
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// uvarint reads the length at the start of s: its value and its size.
// Most fields are shorter than 128 bytes, a length of one byte.
func uvarint(s string) (n, w int) {
	if s[0] < 0x80 {
		return int(s[0]), 1
	}
	v, w := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
	return int(v), w
}

// with returns p with field i set to v.
func (p packed) with(i int, v string) packed {
	f := p.all()
	f[i] = v
	return pack(f)
}
