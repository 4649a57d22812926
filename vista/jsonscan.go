package vista

// A list of 100k sessions is a few tens of megabytes of JSON. Decoding every
// row into a map of json.RawMessage scanned each byte three times and copied
// every value; these helpers walk JSON that encoding/json has already
// validated once and hand out sub-slices instead. On input that is not valid
// JSON they stop early rather than panic: FuzzScanners feeds them raw bytes.
//
// They earn their keep: BenchmarkDecodeReload decodes a 100k-session reload
// in 0.49 s with them, 1.98 s with encoding/json per row into a map (4.1×)
// and 1.20 s into a struct of the fields read (2.5×, and it cannot read the
// operator's extra fields); the bar for keeping them was 1.5×.

import (
	"encoding/binary"
	"math/bits"
)

// member is one name/value pair of a JSON object, both as raw bytes; the
// name is still quoted. elems are the elements of a value that is an
// array, when objectMembers was asked for them.
type member struct {
	name, value []byte
	elems       [][]byte
}

// objectMembers appends the members of the object b to dst. It reports false
// when b is not an object. With arrays, it finds the elements of the
// members whose values are arrays in the same scan: a page's rows are
// its one big array, and finding where it ends and then where each row
// ends read every byte of the page twice.
func objectMembers(dst []member, b []byte, arrays bool) ([]member, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return dst, false
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != '}' {
		if b[i] != '"' {
			return dst, false
		}
		end := skipString(b, i)
		name := b[i:end]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return dst, false
		}
		start := skipSpace(b, i+1)
		var elems [][]byte
		if arrays && start < len(b) && b[start] == '[' {
			elems, end = arrayAt(nil, b, start)
		} else {
			end = skipValue(b, start)
		}
		if end <= start {
			return dst, false
		}
		dst = append(dst, member{name: name, value: b[start:end], elems: elems})
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return dst, i < len(b)
}

// arrayElements appends the elements of the array b to dst.
func arrayElements(dst [][]byte, b []byte) ([][]byte, bool) {
	dst, end := arrayAt(dst, b, skipSpace(b, 0))
	return dst, end >= 0
}

// arrayAt appends the elements of the array that starts at b[i] to dst,
// and returns the index after the array, or -1 when there is none.
func arrayAt(dst [][]byte, b []byte, i int) ([][]byte, int) {
	if i >= len(b) || b[i] != '[' {
		return dst, -1
	}
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] != ']' {
		end := skipValue(b, i)
		if end <= i {
			return dst, -1
		}
		dst = append(dst, b[i:end])
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	if i >= len(b) {
		return dst, -1
	}
	return dst, i + 1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i].
// Most of a page's bytes are inside strings, and a page is scanned
// twice (decodePage, then each row), so it looks at eight bytes a step
// for the two it stops at. Six runs each, alternately (Xeon,
// 2026-12-06), medians: BenchmarkDecodeReload/scanner 0.57 → 0.49 s,
// BenchmarkDecodeWindowAnswer 0.41 → 0.32 ms. (bytes.IndexByte, a call
// for each string, made the window answer slower: a sweep's strings
// are short.)
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		for i+8 <= len(b) {
			if m := quoteOrBackslash(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			break
		}
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// quoteOrBackslash has the high bit set in the byte of x (read little
// endian) that is the first '"' or '\\', and maybe in later bytes; zero
// when there is none. (The classic test for a zero byte, on x XOR each:
// a borrow can only mark bytes after a true match.)
func quoteOrBackslash(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q, s := x^(ones*'"'), x^(ones*'\\')
	return ((q-ones)&^q | (s-ones)&^s) & highs
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return len(b)
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
	}
	return i
}
