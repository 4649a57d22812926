// OData query options: $select, $filter, $skip, $top and $format, read
// from a request's query string.
//
// $filter takes two shapes, the seat check and the window query, and
// nothing else; any other filter is answered 400 with an OData error:
//
//	ID eq '1001-196504' or ID eq '1003-196521'
//	Showtime ge datetime'2026-11-25T18:00:00' and Showtime lt datetime'2026-11-25T19:20:00'
//	(Showtime ge datetime'2026-11-26T11:40:00' and Showtime lt datetime'2026-11-26T13:00:00') or (Showtime ge datetime'2026-11-26T19:40:00' and Showtime lt datetime'2026-11-26T23:00:00')
//
// The grammar, in ABNF. Keywords, property names and the datetime prefix
// are case-sensitive, as in OData; spaces and tabs may stand between any
// two tokens (none inside a literal, nor between datetime and its quote);
// any term or run of terms may be wrapped in parentheses, nested freely.
// "and" binds tighter than "or", as in OData, so that A and B or C and D
// is (A and B) or (C and D):
//
//	filter   = ids / window
//	ids      = idterm *( "or" idterm )            ; 1 to Config.MaxFilterIDs ids
//	idterm   = "ID" "eq" string
//	string   = "'" *( char / "''" ) "'"            ; '' is a quote
//	window   = group *( "or" group )              ; Sessions only; 1 to 100 groups
//	group    = cmp [ "and" cmp ]
//	cmp      = "Showtime" op datetime
//	op       = "ge" / "gt" / "le" / "lt"
//	datetime = "datetime'" date "T" hh ":" mm [ ":" ss [ "." 1*7DIGIT ] ] "'"
//	date     = 4DIGIT "-" 2DIGIT "-" 2DIGIT        ; a real date, year 0001 on
//	hh, mm, ss = 2DIGIT                           ; 00-23, 00-59, 00-59
//
// A window's datetimes are wall times with no zone: Showtime is compared
// as each cinema's local wall time, the very text the rows' Showtime
// field carries. A row is in a window when every comparison of one of its
// groups holds, whichever group: the answer is the union of the groups,
// each row once, in the list's order. A filter that mixes ID and Showtime
// terms, joins ID terms with "and", has a group of more than two
// comparisons, puts an "or" inside an "and" (as in (A or B) and C), or
// names another property or operator, is refused; so is a window of more
// than 100 groups, as past the node count limit.

package vistasim

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// query is the OData options of a request.
type query struct {
	sel    []string  // nil: every field
	ids    []string  // nil: no ID $filter
	window [][]bound // nil: no Showtime $filter; else its groups, see filter
	skip   int
	top    int // -1: none
	selRaw string
}

// splitQuery yields the decoded keys of a raw query string, with their
// values still escaped.
func splitQuery(raw string) iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for part := range strings.SplitSeq(raw, "&") {
			k, v, _ := strings.Cut(part, "=")
			if dk, err := url.QueryUnescape(k); err == nil {
				k = dk
			}
			if !yield(k, v) {
				return
			}
		}
	}
}

func parseQuery(raw string, maxIDs int) (query, error) {
	q := query{top: -1}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("The query string is malformed: %v", err)
	}
	for k, v := range vals {
		if !strings.HasPrefix(k, "$") {
			continue // custom options are ignored, as OData does
		}
		if len(v) > 1 {
			return q, fmt.Errorf("The query parameter '%s' is specified more than once.", k)
		}
		val := v[0]
		switch k {
		case "$select":
			q.selRaw = val
			for name := range strings.SplitSeq(val, ",") {
				name = strings.TrimSpace(name)
				if name == "" {
					return q, fmt.Errorf("The query parameter '$select' has an empty property in '%s'.", val)
				}
				q.sel = append(q.sel, name)
			}
		case "$filter":
			f, err := parseFilter(val)
			if err != nil {
				return q, fmt.Errorf("The query parameter '$filter' is not supported: %v", err)
			}
			if len(f.ids) > maxIDs {
				return q, fmt.Errorf("The node count limit of '%d' has been exceeded: the filter names %d ids.", maxIDs, len(f.ids))
			}
			if len(f.window) > maxWindowGroups {
				return q, fmt.Errorf("The node count limit of '%d' has been exceeded: the filter names %d windows.", maxWindowGroups, len(f.window))
			}
			q.ids, q.window = f.ids, f.window
		case "$skip", "$top":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return q, fmt.Errorf("The query parameter '%s' must be a non-negative integer, not '%s'.", k, val)
			}
			if k == "$skip" {
				q.skip = n
			} else {
				q.top = n
			}
		case "$format":
			if val != "json" && !strings.HasPrefix(val, "application/json") {
				return q, fmt.Errorf("The format '%s' is not supported.", val)
			}
		default:
			return q, fmt.Errorf("The query parameter '%s' is not supported.", k)
		}
	}
	return q, nil
}

// maxWindowGroups is the most groups, windows joined by "or", that a
// window query may have.
const maxWindowGroups = 100

// filter is a parsed $filter: a seat check's ids or a window's groups.
type filter struct {
	ids []string // the ids named, in order; nil for a window
	// window is the groups of Showtime comparisons, in order, each of one
	// or two bounds: a row is in when all the bounds of any group hold.
	// It is nil for a seat check.
	window [][]bound
}

// parseFilter reads a filter of one of the two shapes of the grammar
// above: the seat check's `ID eq 'A' or ID eq 'B'` or the window's
// `Showtime ge datetime'…' and Showtime lt datetime'…'`, one group or
// several joined by "or".
func parseFilter(s string) (filter, error) {
	toks, err := tokenize(s)
	if err != nil {
		return filter{}, err
	}
	p := &filterParser{toks: toks}
	groups, err := p.or()
	if err != nil {
		return filter{}, err
	}
	if p.pos != len(p.toks) {
		return filter{}, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	var nIDs, nCmps int
	for _, g := range groups {
		for _, t := range g {
			if t.isID {
				nIDs++
			} else {
				nCmps++
			}
		}
	}
	var f filter
	switch {
	case nIDs > 0 && nCmps > 0:
		return filter{}, errors.New("a filter cannot mix ID and Showtime terms")
	case nIDs > 0:
		f.ids = make([]string, 0, len(groups))
		for _, g := range groups {
			if len(g) > 1 {
				return filter{}, errors.New("ID terms may only be joined by 'or'")
			}
			f.ids = append(f.ids, g[0].id)
		}
	default:
		f.window = make([][]bound, 0, len(groups))
		for _, g := range groups {
			if len(g) > 2 {
				return filter{}, fmt.Errorf("a window joins at most two Showtime comparisons with 'and', not %d", len(g))
			}
			bs := make([]bound, len(g))
			for i, t := range g {
				bs[i] = t.b
			}
			f.window = append(f.window, bs)
		}
	}
	return f, nil
}

// mentionsShowtime reports whether a $filter names the property Showtime
// outside its quoted literals: whether it is a window query, valid or not.
func mentionsShowtime(s string) bool {
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\'':
			i++
			for i < len(s) {
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						i += 2
						continue
					}
					break
				}
				i++
			}
			i++
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			if s[i:j] == "Showtime" {
				return true
			}
			i = j
		default:
			i++
		}
	}
	return false
}

// cmpOp is a comparison a window's bound makes.
type cmpOp uint8

const (
	opGE cmpOp = iota + 1
	opGT
	opLE
	opLT
)

var cmpOps = map[string]cmpOp{"ge": opGE, "gt": opGT, "le": opLE, "lt": opLT}

// bound is one Showtime comparison of a window: Showtime op datetime'…'.
type bound struct {
	op   cmpOp
	wall [19]byte // the literal's wall time to the second, "2026-11-25T18:00:00"
	frac int32    // and its fraction of a second, in nanoseconds
}

// holds reports whether a row's Showtime, a wall time in whole seconds
// written as "2026-11-25T18:00:00", satisfies the bound. The fixed-width
// text orders as the times do.
func (b *bound) holds(showtime *[19]byte) bool {
	c := bytes.Compare(showtime[:], b.wall[:])
	if c == 0 && b.frac > 0 {
		c = -1 // the row is on the literal's second, before its fraction
	}
	switch b.op {
	case opGE:
		return c >= 0
	case opGT:
		return c > 0
	case opLE:
		return c <= 0
	case opLT:
		return c < 0
	}
	return false
}

// parseDatetime reads the text of an OData v2 datetime literal:
// yyyy-mm-ddThh:mm, yyyy-mm-ddThh:mm:ss or yyyy-mm-ddThh:mm:ss.f to
// .fffffff, a real date and time of day.
func parseDatetime(lit string) (wall [19]byte, frac int32, err error) {
	bad := fmt.Errorf("unrecognized 'Edm.DateTime' literal 'datetime'%s'': want yyyy-mm-ddThh:mm, yyyy-mm-ddThh:mm:ss or yyyy-mm-ddThh:mm:ss.fffffff", lit)
	n := len(lit)
	if n != 16 && n != 19 && (n < 21 || n > 27) {
		return wall, 0, bad
	}
	for i := range n {
		c := lit[i]
		var ok bool
		switch i {
		case 4, 7:
			ok = c == '-'
		case 10:
			ok = c == 'T'
		case 13, 16:
			ok = c == ':'
		case 19:
			ok = c == '.'
		default:
			ok = c >= '0' && c <= '9'
		}
		if !ok {
			return wall, 0, bad
		}
	}
	num := func(i, j int) int {
		v := 0
		for _, c := range []byte(lit[i:j]) {
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, sec := num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16), 0
	if n >= 19 {
		sec = num(17, 19)
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if y < 1 || t.Year() != y || int(t.Month()) != mo || t.Day() != d || t.Hour() != h || t.Minute() != mi || t.Second() != sec {
		return wall, 0, bad
	}
	appendWall(wall[:0], t)
	if n > 20 {
		frac = int32(num(20, n))
		for range 9 - (n - 20) {
			frac *= 10
		}
	}
	return wall, frac, nil
}
