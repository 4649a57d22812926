// Field readers: a row of a list and the ways its fields are read, lenient
// about shape (numbers sent as strings, ids sent as numbers) and strict
// about meaning: a value that cannot be read is an error naming its row and
// field, and it costs only that row.

package vista

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vista-warmer/vista-warmer/keys"
)

// row is one entity of a list, with its fields by Vista's name.
type row struct {
	list    string
	index   int
	id      string
	members []member

	// Where get found each field, for rows named as the one it was
	// found in: a list's rows are nearly always alike, and get scanned
	// every member for every field it read. names are that row's member
	// names, copied (a page's buffer may be reused); at maps a field to
	// its member's index, or -1 when the row lacks it. A decoder asks
	// for the same fields in the same order row after row: byCall keeps
	// them in that order, so that get finds a field by a comparison with
	// the one it was asked for at the same call of the row before, not
	// by hashing its name (the map was a twentieth of decoding a sweep's
	// answer); call counts get's calls in this row.
	names  [][]byte
	at     map[string]int
	byCall []fieldAt
	call   int

	// reads, when not nil, records every field a decoder reads and how it
	// reads it: "id", "text", "number", "integer", "integer-text",
	// "strings", "date", "datetime" or "status". A test checks them
	// against Vista's API definition (see readsOf).
	reads map[string]string
}

// fieldAt is where get found a field: its member's index, or -1.
type fieldAt struct {
	field string
	at    int
}

// load makes r the row at index of its list, read from raw as a JSON
// object; it reuses r's members, so that a list costs one row, not one per
// entity. A row that is not an object is a DecodeError with an empty Field.
func (r *row) load(index int, raw json.RawMessage) *DecodeError {
	r.index, r.id, r.call = index, "", 0
	b := bytes.TrimSpace(raw)
	var ok bool
	if r.members, ok = objectMembers(r.members[:0], b, false); !ok {
		return &DecodeError{List: r.list, Index: index, Err: fmt.Errorf("row is not an object: %s", excerpt(string(b)))}
	}
	r.sameNames()
	return nil
}

// sameNames keeps where get found the fields if the row's member names
// are the ones they were found in, name for name in order, and forgets
// them otherwise.
func (r *row) sameNames() {
	if slices.EqualFunc(r.members, r.names, func(m member, name []byte) bool { return bytes.Equal(m.name, name) }) {
		return
	}
	if r.at == nil {
		r.at = make(map[string]int, 32)
	}
	clear(r.at)
	r.byCall = r.byCall[:0]
	r.names = r.names[:0]
	for _, m := range r.members {
		r.names = append(r.names, bytes.Clone(m.name))
	}
}

// decodeRows decodes each of rows with one and appends the entities to out
// and the rows that cannot be read to errs; first is the index of rows[0]
// in the whole list. Callers hand it a list page by page.
func decodeRows[T any](out []T, errs RowErrors, list string, rows []json.RawMessage, first int,
	one func(r *row, raw json.RawMessage) (T, *DecodeError)) ([]T, RowErrors) {
	r := &row{list: list, members: make([]member, 0, 32)}
	out = slices.Grow(out, len(rows)) // a session is 250 bytes: a page's, grown by append, cost twice their room
	for i, raw := range rows {
		derr := r.load(first+i, raw)
		var v T
		if derr == nil {
			v, derr = one(r, raw)
		}
		if derr != nil {
			errs = append(errs, derr)
			continue
		}
		out = append(out, v)
	}
	return out, errs
}

// read notes that a decoder reads field as how, when the row records
// its reads.
func (r *row) read(field, how string) {
	if r.reads != nil {
		r.reads[field] = how
	}
}

func (r *row) fail(field string, err error) *DecodeError {
	return &DecodeError{List: r.list, Index: r.index, ID: r.id, Field: field, Err: err}
}

// get finds a field by Vista's spelling, or failing that by a case-insensitive
// match, as encoding/json would. null counts as absent.
func (r *row) get(field string) (json.RawMessage, bool) {
	var i int
	if c := r.call; c < len(r.byCall) && r.byCall[c].field == field {
		i = r.byCall[c].at
	} else {
		var known bool
		if i, known = r.at[field]; !known {
			i = r.find(field)
			if r.at != nil {
				r.at[field] = i
			}
		}
		if r.at != nil && c == len(r.byCall) {
			r.byCall = append(r.byCall, fieldAt{field: field, at: i})
		}
	}
	r.call++
	if i < 0 {
		return nil, false
	}
	v := bytes.TrimSpace(r.members[i].value)
	if len(v) == 0 || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// find returns the index of the member get reads for field, or -1.
func (r *row) find(field string) int {
	at := -1
	for i, m := range r.members { // the last duplicate wins, as in encoding/json
		if nameIs(m.name, field, false) {
			at = i
		}
	}
	if at < 0 {
		for i, m := range r.members {
			if nameIs(m.name, field, true) {
				at = i
			}
		}
	}
	return at
}

// idField reads an identifier that Vista sends as a string or as a number
// (cinema 1001); numbers keep their literal text, strings are kept exactly
// as sent. A required id that is absent or empty is an error. An id that
// names a cache key (key) must pass CheckID.
func (r *row) idField(field string, required, key bool) (string, *DecodeError) {
	r.read(field, "id")
	v, ok := r.get(field)
	if !ok {
		if required {
			return "", r.fail(field, errMissing)
		}
		return "", nil
	}
	var s string
	switch {
	case v[0] == '"':
		var err error
		if s, err = unquote(v); err != nil {
			return "", r.fail(field, err)
		}
	case isNumber(v):
		s = string(v)
	default:
		return "", r.fail(field, fmt.Errorf("%s is not an id", excerpt(string(v))))
	}
	switch {
	case s == "" && required && !key:
		return "", r.fail(field, errMissing)
	case s == "" && !required:
		return "", nil
	case key:
		if err := CheckID(s); err != nil {
			return "", r.fail(field, err)
		}
	}
	return s, nil
}

// str reads a text field. A number is taken as its literal text: Vista has
// sent postcodes and screen names as numbers. A value longer than
// MaxTextBytes is an error.
func (r *row) str(field string) (string, *DecodeError) {
	r.read(field, "text")
	return r.text(field)
}

// text is str without noting the read: for readers that read a text
// and note it as what they make of it (a date, a number).
func (r *row) text(field string) (string, *DecodeError) {
	v, ok := r.get(field)
	if !ok {
		return "", nil
	}
	var s string
	switch {
	case v[0] == '"':
		var err error
		if s, err = unquote(v); err != nil {
			return "", r.fail(field, err)
		}
	case isNumber(v):
		s = string(v)
	default:
		return "", r.fail(field, fmt.Errorf("%s is not a string", excerpt(string(v))))
	}
	if len(s) > MaxTextBytes {
		return "", r.tooLarge(field, len(s))
	}
	return s, nil
}

func (r *row) tooLarge(field string, n int) *DecodeError {
	return r.fail(field, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, n, MaxTextBytes))
}

// requiredTime reads the text of a date and time that must be present.
func (r *row) requiredTime(field string) (string, *DecodeError) {
	r.read(field, "datetime")
	s, err := r.text(field)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", r.fail(field, errMissing)
	}
	return s, nil
}

// numberText reads a coordinate as the text Vista sent, number or string, so
// no float formatting creeps in.
func (r *row) numberText(field string) (string, *DecodeError) {
	r.read(field, "number")
	return r.text(field)
}

// integer reads a whole number sent as a JSON number (66, 66.0) or a string
// ("66"). Absent, null and "" read as 0.
func (r *row) integer(field string) (int, *DecodeError) {
	r.read(field, "integer")
	return r.whole(field)
}

// integerText reads a whole number that Vista's definition types as a
// string (a film's RunTime, "87"); it accepts what integer does.
func (r *row) integerText(field string) (int, *DecodeError) {
	r.read(field, "integer-text")
	return r.whole(field)
}

func (r *row) whole(field string) (int, *DecodeError) {
	v, ok := r.get(field)
	if !ok {
		return 0, nil
	}
	if n, ok := plainWhole(v); ok {
		return n, nil
	}
	text := string(v)
	if v[0] == '"' {
		s, err := unquote(v)
		if err != nil {
			return 0, r.fail(field, err)
		}
		text = strings.TrimSpace(s)
		if text == "" {
			return 0, nil
		}
	} else if !isNumber(v) {
		return 0, r.fail(field, fmt.Errorf("%s is not a whole number", excerpt(text)))
	}
	n, err := parseWhole(text)
	if err != nil {
		return 0, r.fail(field, fmt.Errorf("%s is not a whole number", excerpt(strconv.Quote(text))))
	}
	return n, nil
}

func parseWhole(s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, errors.New("not a whole number")
	}
	return int(f), nil
}

// plainWhole reads a JSON number of at most 18 digits, no sign but a
// minus, no fraction and no exponent (seats: 66), without making a
// string of it; false sends anything else the long way (parseWhole).
func plainWhole(v []byte) (int, bool) {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if len(digits) < len(v) {
		n = -n
	}
	return n, true
}

// strs reads an array of strings; null or absent is empty, null elements
// are skipped. The strings joined by commas may not be longer than
// MaxTextBytes.
func (r *row) strs(field string) ([]string, *DecodeError) {
	r.read(field, "strings")
	v, ok := r.get(field)
	if !ok {
		return nil, nil
	}
	bad := func() *DecodeError {
		return r.fail(field, fmt.Errorf("%s is not an array of strings", excerpt(string(v))))
	}
	if v[0] != '[' {
		return nil, bad()
	}
	elems, ok := arrayElements(nil, v)
	if !ok {
		return nil, bad()
	}
	out := make([]string, 0, len(elems))
	n := 0
	for _, e := range elems {
		e = bytes.TrimSpace(e)
		if string(e) == "null" {
			continue
		}
		if len(e) == 0 || e[0] != '"' {
			return nil, bad()
		}
		s, err := unquote(e)
		if err != nil {
			return nil, bad()
		}
		if n += len(s) + 1; n > MaxTextBytes+1 {
			return nil, r.tooLarge(field, n-1)
		}
		out = append(out, s)
	}
	return out, nil
}

// status reads a session's Status: Vista's number (7), a numeric string,
// or a letter or word. text is what Vista sent, as text.
func (r *row) status(field string) (text string, state keys.State, present bool, derr *DecodeError) {
	r.read(field, "status")
	v, ok := r.get(field)
	if !ok {
		return "", keys.StateOpen, false, nil
	}
	switch {
	case v[0] == '"':
		var err error
		if text, err = unquote(v); err != nil {
			return "", "", false, r.fail(field, err)
		}
		if len(text) > MaxTextBytes {
			return "", "", false, r.tooLarge(field, len(text))
		}
		if n, err := parseWhole(strings.TrimSpace(text)); err == nil {
			return text, ParseStatus(strconv.Itoa(n)), true, nil
		}
		return text, ParseStatus(text), true, nil
	case isNumber(v):
		n, err := parseWhole(string(v))
		if err != nil {
			return "", "", false, r.fail(field, fmt.Errorf("%s is not a session status", excerpt(string(v))))
		}
		return string(v), ParseStatus(strconv.Itoa(n)), true, nil
	}
	return "", "", false, r.fail(field, fmt.Errorf("%s is not a session status", excerpt(string(v))))
}

// extra reads a field the operator asked to keep: a string as its text,
// null or absent as "", any other value as compact JSON.
func (r *row) extra(field string) (string, *DecodeError) {
	v, ok := r.get(field)
	if !ok {
		return "", nil
	}
	var s string
	switch v[0] {
	case '"':
		var err error
		if s, err = unquote(v); err != nil {
			return "", r.fail(field, err)
		}
	case '{', '[':
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return "", r.fail(field, err)
		}
		s = b.String()
	default: // a number, true or false
		s = string(v)
	}
	if len(s) > MaxTextBytes {
		return "", r.tooLarge(field, len(s))
	}
	return s, nil
}

// extras reads the fields the operator asked to keep, in order.
func (r *row) extras(names []string) ([]string, *DecodeError) {
	if len(names) == 0 {
		return nil, nil
	}
	out := make([]string, len(names))
	for i, name := range names {
		var derr *DecodeError
		if out[i], derr = r.extra(name); derr != nil {
			return nil, derr
		}
	}
	return out, nil
}

// date reads a calendar date (Vista sends "2026-11-25T00:00:00").
func (r *row) date(field string) (string, *DecodeError) {
	r.read(field, "date")
	s, derr := r.text(field)
	if derr != nil {
		return "", derr
	}
	d, err := ParseDate(s)
	if err != nil {
		return "", r.fail(field, err)
	}
	return d, nil
}

// nameIs reports whether a member's quoted name is field, ignoring case
// when fold is set. It allocates only for the rare name written with escapes.
func nameIs(quoted []byte, field string, fold bool) bool {
	if len(quoted) >= 2 && bytes.IndexByte(quoted[1:len(quoted)-1], '\\') < 0 {
		inner := quoted[1 : len(quoted)-1]
		if fold {
			return equalFoldASCII(inner, field)
		}
		return string(inner) == field
	}
	return escapedNameIs(quoted, field, fold)
}

// escapedNameIs is nameIs's slow path, apart so that the fast one keeps its
// variables on the stack.
func escapedNameIs(quoted []byte, field string, fold bool) bool {
	name, err := unquote(quoted)
	if err != nil {
		return false
	}
	if fold {
		return strings.EqualFold(name, field)
	}
	return name == field
}

// equalFoldASCII is strings.EqualFold for a name of bytes, without
// converting it; Vista's field names are ASCII.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if x >= utf8.RuneSelf || y >= utf8.RuneSelf {
			return strings.EqualFold(string(b), s)
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// unquote reads a JSON string that json.Unmarshal has already checked as
// part of its row. Most of Vista's strings hold no escape and valid UTF-8:
// those are sliced out directly, which halves the cost of decoding a large
// session list; the rest go through encoding/json.
func unquote(v []byte) (string, error) {
	if n := len(v); n >= 2 && v[0] == '"' && v[n-1] == '"' {
		inner := v[1 : n-1]
		if bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '"') < 0 && utf8.Valid(inner) {
			return string(inner), nil
		}
	}
	// Only here does the string escape to the heap: a string that a
	// caller passed by pointer to json.Unmarshal was an allocation of its
	// own on every call, fast or not.
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}

// isNumber reports whether v, already known to be one valid JSON value, is a
// number.
func isNumber(v []byte) bool {
	return len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))
}

// excerpt shortens a value for an error message, so one huge field cannot
// make a huge log line.
func excerpt(s string) string {
	const max = 64
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
