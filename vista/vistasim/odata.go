package vistasim

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// ---- fields ----

// field writes one property of a row.
type field[R any] struct {
	name string
	key  string // `"Name":`
	put  func(b []byte, r *R) []byte
}

type fieldSet[R any] struct {
	all    []field[R]
	byName map[string]int
}

func newFieldSet[R any](fields ...field[R]) fieldSet[R] {
	fs := fieldSet[R]{all: fields, byName: make(map[string]int, len(fields))}
	for i := range fs.all {
		fs.all[i].key = `"` + fs.all[i].name + `":`
		fs.byName[fs.all[i].name] = i
	}
	return fs
}

// pick returns the fields named by $select, in the entity's order.
func (fs fieldSet[R]) pick(sel []string) ([]field[R], error) {
	if sel == nil {
		return fs.all, nil
	}
	want := make([]bool, len(fs.all))
	for _, name := range sel {
		if name == "*" {
			return fs.all, nil
		}
		i, ok := fs.byName[name]
		if !ok {
			return nil, fmt.Errorf("Could not find a property named '%s' on the type.", name)
		}
		want[i] = true
	}
	var out []field[R]
	for i, f := range fs.all {
		if want[i] {
			out = append(out, f)
		}
	}
	return out, nil
}

func str[R any](name string, get func(*R) string) field[R] {
	return field[R]{name: name, put: func(b []byte, r *R) []byte { return appendString(b, get(r)) }}
}

// nullable writes "" as null, as Vista does for unset text.
func nullable[R any](name string, get func(*R) string) field[R] {
	return field[R]{name: name, put: func(b []byte, r *R) []byte {
		if v := get(r); v != "" {
			return appendString(b, v)
		}
		return append(b, "null"...)
	}}
}

func num[R any](name string, get func(*R) int) field[R] {
	return field[R]{name: name, put: func(b []byte, r *R) []byte { return strconv.AppendInt(b, int64(get(r)), 10) }}
}

func boolean[R any](name string, get func(*R) bool) field[R] {
	return field[R]{name: name, put: func(b []byte, r *R) []byte { return strconv.AppendBool(b, get(r)) }}
}

func literal[R any](name, json string) field[R] {
	return field[R]{name: name, put: func(b []byte, _ *R) []byte { return append(b, json...) }}
}

func cinemaFields() fieldSet[cinemaRow] {
	type R = cinemaRow
	return newFieldSet(
		str("ID", func(r *R) string { return r.c.ID }),
		str("Name", func(r *R) string { return r.name }),
		nullable("NameAlt", func(*R) string { return "" }),
		str("PhoneNumber", func(r *R) string { return r.c.Phone }),
		str("EmailAddress", func(r *R) string { return r.c.Email }),
		str("Address1", func(r *R) string { return r.c.Address1 }),
		str("Address2", func(r *R) string { return r.c.Address2 }),
		str("City", func(r *R) string { return r.c.City }),
		field[R]{name: "Latitude", put: func(b []byte, r *R) []byte { return strconv.AppendFloat(b, r.c.Lat, 'f', -1, 64) }},
		field[R]{name: "Longitude", put: func(b []byte, r *R) []byte { return strconv.AppendFloat(b, r.c.Lon, 'f', -1, 64) }},
		nullable("ParkingInfo", func(r *R) string { return r.c.Parking }),
		str("LoyaltyCode", func(r *R) string { return r.c.Loyalty }),
		boolean("IsGiftStoreEnabled", func(r *R) bool { return r.c.GiftStore }),
		str("TimeZoneId", func(r *R) string { return r.c.Zone }),
		str("HOPK", func(r *R) string { return "0000000" + r.c.ID[1:] }),
		str("CurrencyCode", func(r *R) string { return r.c.Currency }),
		boolean("AllowPrintAtHomeBookings", func(r *R) bool { return r.c.idx%2 == 0 }),
		literal[R]("CinemaOperators", `[{"ID":"0000000001","Name":"Main"}]`),
	)
}

func filmFields() fieldSet[filmRow] {
	type R = filmRow
	return newFieldSet(
		str("ID", func(r *R) string { return r.id }),
		str("ScheduledFilmId", func(r *R) string { return r.f.ID }),
		str("CinemaId", func(r *R) string { return r.c.ID }),
		str("Title", func(r *R) string { return r.title }),
		nullable("TitleAlt", func(*R) string { return "" }),
		str("Rating", func(r *R) string { return r.f.Rating }),
		str("Synopsis", func(r *R) string { return r.f.Synopsis }),
		str("RunTime", func(r *R) string { return r.f.RunTime }),
		str("OpeningDate", func(r *R) string { return r.f.Opening }),
		str("GenreId", func(r *R) string { return r.f.Genre }),
		str("Distributor", func(r *R) string { return r.f.Distributor }),
		str("TrailerUrl", func(r *R) string { return "https://trailers.example.com/" + r.f.ID + ".mp4" }),
		boolean("IsComingSoon", func(r *R) bool { return false }),
		boolean("IsScheduledAtCinema", func(r *R) bool { return true }),
		literal[R]("AdditionalUrls", `[]`),
	)
}

func sessionFields(letterStatus bool, omit []string) fieldSet[sessionRow] {
	type R = sessionRow
	status := field[R]{name: "Status", put: func(b []byte, r *R) []byte { return strconv.AppendInt(b, int64(r.code), 10) }}
	if letterStatus {
		status.put = func(b []byte, r *R) []byte { return append(b, '"', r.status, '"') }
	}
	all := []field[R]{
		str("ID", func(r *R) string { return r.x.id }),
		str("CinemaId", func(r *R) string { return r.x.c.ID }),
		str("ScheduledFilmId", func(r *R) string { return r.x.f.ID }),
		field[R]{name: "SessionId", put: func(b []byte, r *R) []byte {
			b = append(b, '"')
			b = strconv.AppendInt(b, int64(r.x.num), 10)
			return append(b, '"')
		}},
		literal[R]("AreaCategoryCodes", `["0000000001"]`),
		field[R]{name: "Showtime", put: func(b []byte, r *R) []byte {
			b = append(b, '"')
			b = append(b, r.x.showtime[:]...)
			return append(b, '"')
		}},
		literal[R]("IsAllocatedSeating", "true"),
		num("SeatsAvailable", func(r *R) int { return int(r.seats) }),
		literal[R]("AllowComps", "false"),
		str("PriceGroupCode", func(r *R) string { return priceGroups[int(r.x.screen)%len(priceGroups)] }),
		field[R]{name: "ScreenName", put: func(b []byte, r *R) []byte {
			b = append(b, `"Screen `...)
			b = strconv.AppendInt(b, int64(r.x.screen), 10)
			return append(b, '"')
		}},
		literal[R]("ScreenNameAlt", "null"),
		num("ScreenNumber", func(r *R) int { return int(r.x.screen) }),
		literal[R]("SalesChannels", `";CALL;RSP;GSALE;CELL;KIOSK;PDA;WWW;POSBK;POS;IVR;"`),
		field[R]{name: "SessionAttributesNames", put: func(b []byte, r *R) []byte {
			b = append(b, '[')
			for i, a := range attributeSets[r.x.attrs] {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, a)
			}
			return append(b, ']')
		}},
		literal[R]("ConceptAttributesNames", `[]`),
		literal[R]("AllowTicketSales", "true"),
		field[R]{name: "SessionBusinessDate", put: func(b []byte, r *R) []byte {
			b = append(b, '"')
			b = append(b, r.x.business[:]...)
			return append(b, '"')
		}},
		num("SoldoutStatus", func(r *R) int { return int(r.soldout) }),
		literal[R]("TypeCode", `"N"`),
		status,
		literal[R]("MinimumTicketPriceInCents", "1250"),
	}
	all = slices.DeleteFunc(all, func(f field[R]) bool { return slices.Contains(omit, f.name) })
	return newFieldSet(all...)
}

var priceGroups = []string{"0000000001", "0000000002", "0000000003"}

// ---- writing ----

// streamWriter buffers the body; the status is sent with the first bytes.
type streamWriter struct{ *bufio.Writer }

func newStreamWriter(w http.ResponseWriter) *streamWriter {
	return &streamWriter{bufio.NewWriterSize(w, 64<<10)}
}

// page is the part of a list one request sends: rows[start:end] of the
// first total (the list cut at $top).
type page struct{ start, end, total int }

// pageOf is the page of a list of n rows that q asks for, pageSize rows at
// most (any number when pageSize is negative).
func pageOf(n int, q query, pageSize int) page {
	total := n
	if q.top >= 0 {
		total = min(total, q.skip+q.top)
	}
	start := min(q.skip, total)
	end := total
	if pageSize > 0 {
		end = min(start+pageSize, total)
	}
	return page{start, end, total}
}

// writeList writes page pg of rows, with the fields $select picked, as an
// OData feed, with an odata.nextLink when the list goes on; fill, when
// given, completes the page's rows first.
func writeList[R any](w io.Writer, r *http.Request, set string, q query, fields []field[R], pg page, rows []R, fill func([]R)) {
	start, end, total := pg.start, pg.end, pg.total
	if fill != nil {
		fill(rows[start:end])
	}

	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	path := r.URL.EscapedPath()
	i := strings.LastIndex(path, "/OData.svc/")
	if i < 0 { // the client escaped part of "OData.svc"
		path = r.URL.Path
		i = strings.LastIndex(path, "/OData.svc/")
	}
	base := scheme + "://" + r.Host + path[:i+len("/OData.svc/")]

	b := make([]byte, 0, 4<<10)
	b = append(b, `{"odata.metadata":`...)
	meta := base + "$metadata#" + set
	if q.sel != nil {
		meta += "&$select=" + q.selRaw
	}
	b = appendString(b, meta)
	b = append(b, `,"value":[`...)
	for i := start; i < end; i++ {
		if i > start {
			b = append(b, ',')
		}
		b = append(b, '{')
		for j := range fields {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, fields[j].key...)
			b = fields[j].put(b, &rows[i])
		}
		b = append(b, '}')
		if len(b) >= 32<<10 {
			if _, err := w.Write(b); err != nil {
				return // the client has gone
			}
			b = b[:0]
		}
	}
	b = append(b, ']')
	if end < total {
		b = append(b, `,"odata.nextLink":`...)
		b = appendString(b, nextLink(r, scheme, end, q.top, total-end))
	}
	b = append(b, '}')
	w.Write(b)
}

// nextLink is the request's own URL with $skip set to where the next page
// starts (and $top lowered by what was sent, when there was one).
func nextLink(r *http.Request, scheme string, skip, top, left int) string {
	var parts []string
	for part := range strings.SplitSeq(r.URL.RawQuery, "&") {
		if part == "" {
			continue
		}
		k, _, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil && (dk == "$skip" || dk == "$top") {
			continue
		}
		parts = append(parts, part)
	}
	if top >= 0 {
		parts = append(parts, "$top="+strconv.Itoa(left))
	}
	parts = append(parts, "$skip="+strconv.Itoa(skip))
	return scheme + "://" + r.Host + r.URL.EscapedPath() + "?" + strings.Join(parts, "&")
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
