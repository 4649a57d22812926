// OData query options: $select, $filter (only the seat checks' shape,
// ID eq '...' or ...), $skip, $top and $format, read from a request's
// query string.

package vistasim

import (
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// query is the OData options of a request.
type query struct {
	sel    []string // nil: every field
	ids    []string // nil: no $filter
	skip   int
	top    int // -1: none
	selRaw string
}

// splitQuery yields the decoded keys of a raw query string.
func splitQuery(raw string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for part := range strings.SplitSeq(raw, "&") {
			k, _, _ := strings.Cut(part, "=")
			if dk, err := url.QueryUnescape(k); err == nil {
				k = dk
			}
			if !yield(k) {
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
			ids, err := parseFilter(val)
			if err != nil {
				return q, fmt.Errorf("The query parameter '$filter' is not supported: %v", err)
			}
			if len(ids) > maxIDs {
				return q, fmt.Errorf("The node count limit of '%d' has been exceeded: the filter names %d ids.", maxIDs, len(ids))
			}
			q.ids = ids
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

// parseFilter reads a filter of the one shape Vista's seat checks use,
// `ID eq 'A' or ID eq 'B'`, with any spacing and parentheses. It returns
// the ids named, in order, never nil.
func parseFilter(s string) ([]string, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	ids := []string{}
	if err := p.expr(&ids); err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	return ids, nil
}

type tokKind int

const (
	tokWord tokKind = iota
	tokString
	tokOpen
	tokClose
)

type token struct {
	kind tokKind
	text string
}

func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '(':
			toks = append(toks, token{tokOpen, "("})
			i++
		case c == ')':
			toks = append(toks, token{tokClose, ")"})
			i++
		case c == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, errors.New("unterminated string")
				}
				if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			toks = append(toks, token{tokString, b.String()})
		case c == '_' || c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z':
			j := i
			for j < len(s) && (s[j] == '_' || s[j] >= '0' && s[j] <= '9' || s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z') {
				j++
			}
			toks = append(toks, token{tokWord, s[i:j]})
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, fmt.Errorf("unexpected %q", r)
		}
	}
	return toks, nil
}

type filterParser struct {
	toks []token
	pos  int
}

func (p *filterParser) next() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	t := p.toks[p.pos]
	p.pos++
	return t, true
}

func (p *filterParser) peekWord(w string) bool {
	return p.pos < len(p.toks) && p.toks[p.pos].kind == tokWord && p.toks[p.pos].text == w
}

// expr := term ("or" term)*
func (p *filterParser) expr(ids *[]string) error {
	if err := p.term(ids); err != nil {
		return err
	}
	for p.peekWord("or") {
		p.pos++
		if err := p.term(ids); err != nil {
			return err
		}
	}
	return nil
}

// term := "(" expr ")" | "ID" "eq" string
func (p *filterParser) term(ids *[]string) error {
	t, ok := p.next()
	switch {
	case !ok:
		return errors.New("unexpected end")
	case t.kind == tokOpen:
		if err := p.expr(ids); err != nil {
			return err
		}
		if t, ok := p.next(); !ok || t.kind != tokClose {
			return errors.New("missing ')'")
		}
		return nil
	case t.kind == tokWord && t.text == "ID":
		if !p.peekWord("eq") {
			return errors.New("only 'ID eq' is supported")
		}
		p.pos++
		v, ok := p.next()
		if !ok || v.kind != tokString {
			return errors.New("'ID eq' must be followed by a quoted id")
		}
		*ids = append(*ids, v.text)
		return nil
	}
	return fmt.Errorf("unexpected %q", t.text)
}
