// The $filter's tokens and its parser: a filter read with OData's
// precedence into the groups query.go's grammar allows.

package vistasim

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

type tokKind int

const (
	tokWord tokKind = iota
	tokString
	tokDatetime // datetime'…': its text is what the quotes hold
	tokOpen
	tokClose
)

type token struct {
	kind tokKind
	text string
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z'
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
			text, j, err := quoted(s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{tokString, text})
			i = j
		case isWordByte(c):
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			if s[i:j] == "datetime" && j < len(s) && s[j] == '\'' {
				text, k, err := quoted(s, j)
				if err != nil {
					return nil, err
				}
				toks = append(toks, token{tokDatetime, text})
				i = k
				continue
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

// quoted reads the string literal that opens with the quote at s[i], a
// doubled quote standing for one inside; it returns its text and where it
// ends.
func quoted(s string, i int) (string, int, error) {
	var b strings.Builder
	i++
	for {
		if i >= len(s) {
			return "", 0, errors.New("unterminated string")
		}
		if s[i] == '\'' {
			if i+1 < len(s) && s[i+1] == '\'' {
				b.WriteByte('\'')
				i += 2
				continue
			}
			return b.String(), i + 1, nil
		}
		b.WriteByte(s[i])
		i++
	}
}

// filterTerm is one comparison of a filter: ID eq '…' or Showtime op
// datetime'…'.
type filterTerm struct {
	isID bool
	id   string // the id of an ID term
	b    bound  // the bound of a Showtime term
}

// filterParser reads a filter, with OData's precedence, as an "or" of
// "and"s of terms; parseFilter then checks that they make one of the
// shapes.
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

// or := and ("or" and)*
//
// It returns the "and"s it joins, each as its terms, in order; an "or"
// within parentheses is flattened into the one around it.
func (p *filterParser) or() ([][]filterTerm, error) {
	groups, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peekWord("or") {
		p.pos++
		more, err := p.and()
		if err != nil {
			return nil, err
		}
		groups = append(groups, more...)
	}
	return groups, nil
}

// and := primary ("and" primary)*
//
// It returns one group, the terms it joins, unless it is a lone primary
// that is an "or" in parentheses; an "or" joined by "and" to anything,
// as in (A or B) and C, is not a shape the filters take.
func (p *filterParser) and() ([][]filterTerm, error) {
	groups, err := p.primary()
	if err != nil {
		return nil, err
	}
	for p.peekWord("and") {
		p.pos++
		more, err := p.primary()
		if err != nil {
			return nil, err
		}
		if len(groups) != 1 || len(more) != 1 {
			return nil, errors.New("an 'or' inside an 'and' is not supported")
		}
		groups[0] = append(groups[0], more[0]...)
	}
	return groups, nil
}

// primary := "(" or ")" | "ID" "eq" string | "Showtime" op datetime
func (p *filterParser) primary() ([][]filterTerm, error) {
	t, ok := p.next()
	switch {
	case !ok:
		return nil, errors.New("unexpected end")
	case t.kind == tokOpen:
		groups, err := p.or()
		if err != nil {
			return nil, err
		}
		if t, ok := p.next(); !ok || t.kind != tokClose {
			return nil, errors.New("missing ')'")
		}
		return groups, nil
	case t.kind == tokWord && t.text == "ID":
		if !p.peekWord("eq") {
			return nil, errors.New("only 'ID eq' is supported")
		}
		p.pos++
		v, ok := p.next()
		if !ok || v.kind != tokString {
			return nil, errors.New("'ID eq' must be followed by a quoted id")
		}
		return [][]filterTerm{{{isID: true, id: v.text}}}, nil
	case t.kind == tokWord && t.text == "Showtime":
		o, ok := p.next()
		op := cmpOps[o.text]
		if !ok || o.kind != tokWord || op == 0 {
			return nil, errors.New("Showtime may only be compared with 'ge', 'gt', 'le' or 'lt'")
		}
		v, ok := p.next()
		if !ok || v.kind != tokDatetime {
			return nil, fmt.Errorf("'Showtime %s' must be followed by a datetime'yyyy-mm-ddThh:mm:ss' literal", o.text)
		}
		b := bound{op: op}
		var err error
		if b.wall, b.frac, err = parseDatetime(v.text); err != nil {
			return nil, err
		}
		return [][]filterTerm{{{b: b}}}, nil
	}
	return nil, fmt.Errorf("unexpected %q", t.text)
}
