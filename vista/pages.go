// OData pages: one answer of a list, in the shapes Vista's services use.

package vista

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	segjson "github.com/segmentio/encoding/json"
)

// page is one answer of an OData list: its rows and the link to the next
// page. Each row is a slice of the answer (see fetchList).
type page struct {
	rows []json.RawMessage
	next string
}

var (
	errNoList    = errors.New("answer holds no list (neither value nor d)")
	errNotObject = errors.New("is not an object")
	errNotArray  = errors.New("is not an array")
	errMissing   = errors.New("missing")
)

// invalid says why body is not valid JSON, or nil if it is. Validity is
// encoding/json's; segmentio/encoding's validator agrees with it on
// everything (its package passes encoding/json's tests) but nesting, and
// reads a page of sessions 4× as fast: encoding/json.Valid was a sixth of
// the warmer's CPU in a cold load. Its validator goes a call deeper for
// each level of nesting, without limit: an answer nested deeper than
// encoding/json allows (tooDeep) is left to encoding/json, which refuses
// it, as it is an answer segmentio's refuses, for the error that says
// where. encoding/json has the last word.
func invalid(body []byte) error {
	if !tooDeep(body) && segjson.Valid(body) {
		return nil
	}
	var v any
	return json.Unmarshal(body, &v) // a *json.SyntaxError saying where
}

// maxDepth is the deepest nesting encoding/json reads.
const maxDepth = 10000

// tooDeep reports whether b, read as JSON, opens more than maxDepth
// arrays and objects inside each other. A page has a few brackets a row,
// so counting them all (which the CPU does 32 bytes at a time) is almost
// always answer enough.
func tooDeep(b []byte) bool {
	if bytes.Count(b, []byte{'['})+bytes.Count(b, []byte{'{'}) <= maxDepth {
		return false
	}
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			i = skipString(b, i) - 1
		case '[', '{':
			if depth++; depth > maxDepth {
				return true
			}
		case ']', '}':
			depth--
		}
	}
	return false
}

// decodePage reads one page of list, in any of the shapes Vista's OData
// services use: v3/v4 JSON ({"value":[...], "odata.nextLink": ...}) and v2
// verbose JSON ({"d":{"results":[...],"__next":...}} or {"d":[...]}).
//
// Any error is a *DecodeError with Index -1: a page that cannot be read as a
// whole yields no rows at all, since a partial list would read as entities
// that disappeared.
func decodePage(list string, body []byte) (page, error) {
	fail := func(err error) (page, error) {
		return page{}, &DecodeError{List: list, Index: -1, Err: err}
	}
	if err := invalid(body); err != nil {
		return fail(err)
	}
	// From here on the body is known to be valid JSON: the scanners of
	// jsonscan.go take it apart without copying.
	top, ok := objectMap(body)
	if !ok {
		return fail(fmt.Errorf("answer %w", errNotObject))
	}
	var (
		p   page
		err error
	)
	switch value, d := top["value"], top["d"]; {
	case value.value != nil:
		if p.rows, err = rawArray(value); err != nil {
			return fail(fmt.Errorf("value %w", err))
		}
	case d.value != nil:
		if d.value[0] == '[' {
			if p.rows, err = rawArray(d); err != nil {
				return fail(fmt.Errorf("d %w", err))
			}
			break
		}
		inner, ok := objectMap(d.value)
		if !ok {
			return fail(fmt.Errorf("d %w", errNotObject))
		}
		results, ok := inner["results"]
		if !ok {
			return fail(fmt.Errorf("d: %w", errNoList))
		}
		if p.rows, err = rawArray(results); err != nil {
			return fail(fmt.Errorf("d.results %w", err))
		}
		if p.next, err = link(inner["__next"].value, "__next"); err != nil {
			return fail(fmt.Errorf("d.%w", err))
		}
	default:
		return fail(errNoList)
	}
	for _, k := range []string{"@odata.nextLink", "odata.nextLink", "__next"} {
		if p.next != "" {
			break
		}
		if p.next, err = link(top[k].value, k); err != nil {
			return fail(err)
		}
	}
	return p, nil
}

// link reads a next-page link, the value v of the member key: a string,
// or null or nothing for none.
func link(v []byte, key string) (string, error) {
	if len(v) == 0 || string(v) == "null" {
		return "", nil
	}
	var s string
	if v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", fmt.Errorf("%s is not a string", key)
	}
	return strings.TrimSpace(s), nil
}

// rawArray returns the elements of m's value, an array.
func rawArray(m member) ([]json.RawMessage, error) {
	if len(m.value) == 0 || m.value[0] != '[' {
		return nil, errNotArray
	}
	rows := make([]json.RawMessage, len(m.elems))
	for i, e := range m.elems {
		rows[i] = e
	}
	return rows, nil
}

// objectMap returns the members of a valid JSON object by name, with the
// elements of those that are arrays; a later duplicate wins, as with
// encoding/json. It reports false for anything else, null included.
func objectMap(b []byte) (map[string]member, bool) {
	ms, ok := objectMembers(nil, b, true)
	if !ok {
		return nil, false
	}
	m := make(map[string]member, len(ms))
	for _, mb := range ms {
		if name, err := unquote(mb.name); err == nil {
			m[name] = mb
		}
	}
	return m, true
}
