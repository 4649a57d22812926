package vista

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vista-warmer/vista-warmer/keys"
)

func TestDecodePage(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantRows int
		wantNext string
		wantErr  string // the whole message; empty for success
	}{
		{name: "value", body: `{"value":[{"ID":"1"},{"ID":"2"}]}`, wantRows: 2},
		{name: "empty list", body: `{"odata.metadata":"x","value":[]}`, wantRows: 0},
		{name: "odata.nextLink", body: `{"value":[{}],"odata.nextLink":"Sessions?$skiptoken=1"}`, wantRows: 1, wantNext: "Sessions?$skiptoken=1"},
		{name: "@odata.nextLink", body: `{"@odata.context":"x","value":[{}],"@odata.nextLink":"https://h/a"}`, wantRows: 1, wantNext: "https://h/a"},
		{name: "__next", body: `{"value":[{}],"__next":"https://h/b"}`, wantRows: 1, wantNext: "https://h/b"},
		{name: "null next link", body: `{"value":[{}],"odata.nextLink":null}`, wantRows: 1},
		{name: "v2 d.results", body: `{"d":{"results":[{},{},{}],"__next":"https://h/c"}}`, wantRows: 3, wantNext: "https://h/c"},
		{name: "v2 d array", body: `{"d":[{}]}`, wantRows: 1},
		{name: "rows of any shape", body: `{"value":[1,"x",null,[],{}]}`, wantRows: 5},
		{name: "not JSON", body: `<html>Service Unavailable</html>`, wantErr: "decode sessions: value: invalid character '<' looking for beginning of value"},
		{name: "empty body", body: ``, wantErr: "decode sessions: value: unexpected end of JSON input"},
		{name: "truncated", body: `{"value":[{"ID":"1"},{"ID":`, wantErr: "decode sessions: value: unexpected end of JSON input"},
		{name: "array at top", body: `[{"ID":"1"}]`, wantErr: "decode sessions: value: answer is not an object"},
		{name: "null at top", body: `null`, wantErr: "decode sessions: value: answer is not an object"},
		{name: "no list", body: `{"error":{"code":"","message":"oops"}}`, wantErr: "decode sessions: value: answer holds no list (neither value nor d)"},
		{name: "value not an array", body: `{"value":{"ID":"1"}}`, wantErr: "decode sessions: value: value is not an array"},
		{name: "value null", body: `{"value":null}`, wantErr: "decode sessions: value: value is not an array"},
		{name: "d.results missing", body: `{"d":{"__count":"3"}}`, wantErr: "decode sessions: value: d: answer holds no list (neither value nor d)"},
		{name: "d a string", body: `{"d":"x"}`, wantErr: "decode sessions: value: d is not an object"},
		{name: "next link a number", body: `{"value":[],"odata.nextLink":7}`, wantErr: "decode sessions: value: odata.nextLink is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := decodePage("sessions", []byte(tt.body))
			if tt.wantErr != "" {
				var de *DecodeError
				if !errors.As(err, &de) || de.Index != -1 {
					t.Fatalf("decodePage(%q) error = %v, want a *DecodeError with Index -1", tt.body, err)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("decodePage(%q) error = %q, want %q", tt.body, err, tt.wantErr)
				}
				if p.rows != nil {
					t.Errorf("decodePage(%q) rows = %d, want none with an error", tt.body, len(p.rows))
				}
				return
			}
			if err != nil {
				t.Fatalf("decodePage(%q): %v", tt.body, err)
			}
			if len(p.rows) != tt.wantRows || p.next != tt.wantNext {
				t.Errorf("decodePage(%q) = %d rows, next %q; want %d, %q", tt.body, len(p.rows), p.next, tt.wantRows, tt.wantNext)
			}
		})
	}
}

func TestDecodePageSyntaxErrorWrapped(t *testing.T) {
	_, err := decodePage("films", []byte(`{"value":[}`))
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("decodePage error = %v, want it to wrap a *json.SyntaxError", err)
	}
}

// sessionLine renders a Session on one line, so a failing table case shows
// every field at once.
func sessionLine(s Session) string {
	line := fmt.Sprintf("id=%s cinema=%s film=%s session=%s showtime=%s zone=%s date=%s seats=%d screen=%q/%d attrs=%q soldout=%d status=%q state=%s",
		s.ID, s.CinemaID, s.FilmID, s.SessionID, s.Showtime.Format(time.RFC3339Nano), s.Showtime.Location(),
		s.BusinessDate, s.SeatsAvailable, s.ScreenName, s.ScreenNumber, s.Attributes, s.SoldoutStatus, s.Status, s.State)
	if s.Extra != nil {
		line += fmt.Sprintf(" extra=%q", s.Extra)
	}
	return line
}

func TestDecodeSessionRows(t *testing.T) {
	berlin := mustLocation(t, "Europe/Berlin")
	zone := func(cinemaID string) *time.Location {
		if cinemaID == "1001" {
			return berlin
		}
		return time.UTC
	}
	full := `"ID":"1001-14164","CinemaId":"1001","ScheduledFilmId":"HO1","SessionId":"14164","Showtime":"2026-11-25T20:00:00","SessionBusinessDate":"2026-11-25T00:00:00","ScreenName":"Kino 1","ScreenNumber":1,"SoldoutStatus":0,"Status":"O"`
	tests := []struct {
		name    string
		row     string
		want    string // sessionLine of the result
		wantErr string // the DecodeError's message
		wantID  string // the DecodeError's ID
	}{
		{
			name: "full row",
			row:  `{` + full + `,"SeatsAvailable":66,"SessionAttributesNames":["OV","3D"]}`,
			want: `id=1001-14164 cinema=1001 film=HO1 session=14164 showtime=2026-11-25T20:00:00+01:00 zone=Europe/Berlin date=2026-11-25 seats=66 screen="Kino 1"/1 attrs=["OV" "3D"] soldout=0 status="O" state=open`,
		},
		{
			name: "numbers as strings",
			row:  `{"ID":"1-2","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SeatsAvailable":"66","ScreenNumber":" 4 ","SoldoutStatus":"2"}`,
			want: `id=1-2 cinema=9 film= session= showtime=2026-07-01T10:00:00Z zone=UTC date= seats=66 screen=""/4 attrs=[] soldout=2 status="" state=open`,
		},
		{
			name: "ids as numbers",
			row:  `{"ID":1001,"CinemaId":1001,"ScheduledFilmId":5,"SessionId":14164,"Showtime":"2026-07-01T10:00:00"}`,
			want: `id=1001 cinema=1001 film=5 session=14164 showtime=2026-07-01T10:00:00+02:00 zone=Europe/Berlin date= seats=0 screen=""/0 attrs=[] soldout=0 status="" state=open`,
		},
		{
			name: "whole float and null fields",
			row:  `{"ID":"a","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SeatsAvailable":66.0,"ScreenName":null,"SessionAttributesNames":null,"SessionBusinessDate":null}`,
			want: `id=a cinema=9 film= session= showtime=2026-07-01T10:00:00Z zone=UTC date= seats=66 screen=""/0 attrs=[] soldout=0 status="" state=open`,
		},
		{
			name: "unknown fields ignored",
			row:  `{"ID":"a","CinemaId":"9","Showtime":"2026-07-01T10:00:00","AreaCategoryCodes":["1"],"SalesChannels":";WWW;","Nested":{"x":[1,{"y":null}]}}`,
			want: `id=a cinema=9 film= session= showtime=2026-07-01T10:00:00Z zone=UTC date= seats=0 screen=""/0 attrs=[] soldout=0 status="" state=open`,
		},
		{
			name: "case-insensitive field names",
			row:  `{"id":"a","cinemaid":"9","SHOWTIME":"2026-07-01T10:00:00"}`,
			want: `id=a cinema=9 film= session= showtime=2026-07-01T10:00:00Z zone=UTC date= seats=0 screen=""/0 attrs=[] soldout=0 status="" state=open`,
		},
		{
			name: "null attribute skipped",
			row:  `{"ID":"a","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SessionAttributesNames":["OV",null,"3D"]}`,
			want: `id=a cinema=9 film= session= showtime=2026-07-01T10:00:00Z zone=UTC date= seats=0 screen=""/0 attrs=["OV" "3D"] soldout=0 status="" state=open`,
		},
		{
			name: "status as Vista's number",
			row:  `{"ID":"a","CinemaId":"9","Showtime":"2026-07-01T10:00:00","Status":1}`,
			want: `id=a cinema=9 film= session= showtime=2026-07-01T10:00:00Z zone=UTC date= seats=0 screen=""/0 attrs=[] soldout=0 status="1" state=closed`,
		},
		{
			name: "status cancelled as a numeric string",
			row:  `{"ID":"a","CinemaId":"9","Showtime":"2026-07-01T10:00:00","Status":" 7 "}`,
			want: `id=a cinema=9 film= session= showtime=2026-07-01T10:00:00Z zone=UTC date= seats=0 screen=""/0 attrs=[] soldout=0 status=" 7 " state=cancelled`,
		},
		{
			name: "status as a word",
			row:  `{"ID":"a","CinemaId":"9","Showtime":"2026-07-01T10:00:00","Status":"Planned"}`,
			want: `id=a cinema=9 film= session= showtime=2026-07-01T10:00:00Z zone=UTC date= seats=0 screen=""/0 attrs=[] soldout=0 status="Planned" state=planned`,
		},
		{
			name: "status unheard of",
			row:  `{"ID":"a","CinemaId":"9","Showtime":"2026-07-01T10:00:00","Status":42}`,
			want: `id=a cinema=9 film= session= showtime=2026-07-01T10:00:00Z zone=UTC date= seats=0 screen=""/0 attrs=[] soldout=0 status="42" state=unknown`,
		},
		{
			name: "OData v2 dates",
			row:  `{"ID":"1001-1","CinemaId":"1001","Showtime":"\/Date(1795636800000)\/","SessionBusinessDate":"/Date(1795564800000+0100)/"}`,
			want: `id=1001-1 cinema=1001 film= session= showtime=2026-11-25T20:00:00+01:00 zone=Europe/Berlin date=2026-11-25 seats=0 screen=""/0 attrs=[] soldout=0 status="" state=open`,
		},
		{
			name: "OData v2 instant",
			row:  `{"ID":"1001-1","CinemaId":"1001","Showtime":"/Date(1795633200000+0100)/"}`,
			want: `id=1001-1 cinema=1001 film= session= showtime=2026-11-25T20:00:00+01:00 zone=Europe/Berlin date= seats=0 screen=""/0 attrs=[] soldout=0 status="" state=open`,
		},
		{
			name: "ticks and an offset",
			row:  `{"ID":"1001-1","CinemaId":"1001","Showtime":"2026-11-25T20:00:00.0000000+01:00","SessionBusinessDate":"2026-11-25T00:00:00.0000000+01:00"}`,
			want: `id=1001-1 cinema=1001 film= session= showtime=2026-11-25T20:00:00+01:00 zone=Europe/Berlin date=2026-11-25 seats=0 screen=""/0 attrs=[] soldout=0 status="" state=open`,
		},
		{name: "bad showtime", row: `{"ID":"x","CinemaId":"9","Showtime":"banana"}`, wantErr: `decode sessions: value[3].Showtime: "banana" is not a date`, wantID: "x"},
		{name: "missing showtime", row: `{"ID":"x","CinemaId":"9"}`, wantErr: `decode sessions: value[3].Showtime: missing`, wantID: "x"},
		{name: "showtime a number", row: `{"ID":"x","CinemaId":"9","Showtime":20261125}`, wantErr: `decode sessions: value[3].Showtime: "20261125" is not a date`, wantID: "x"},
		{name: "missing ID", row: `{"CinemaId":"9","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ID: missing`},
		{name: "empty ID", row: `{"ID":"","CinemaId":"9","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ID: "" cannot be part of a key: empty`},
		{name: "blank ID", row: `{"ID":"  ","CinemaId":"9","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ID: "  " cannot be part of a key: holds whitespace`},
		{name: "ID with a colon", row: `{"ID":"1001:sessions","CinemaId":"9","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ID: "1001:sessions" cannot be part of a key: holds ':'`},
		{name: "ID with a hash tag", row: `{"ID":"{x}1","CinemaId":"9","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ID: "{x}1" cannot be part of a key: holds a brace`},
		{name: "ID padded", row: `{"ID":"1001-1 ","CinemaId":"9","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ID: "1001-1 " cannot be part of a key: holds whitespace`},
		{name: "ID with a control character", row: `{"ID":"a\u0000b","CinemaId":"9","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ID: "a\x00b" cannot be part of a key: holds a control character`},
		{name: "ID too long", row: `{"ID":"` + strings.Repeat("7", 129) + `","CinemaId":"9","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ID: "` + strings.Repeat("7", 64) + `..." cannot be part of a key: 129 bytes, more than 128`},
		{name: "CinemaId with a colon", row: `{"ID":"x","CinemaId":"1001:sessions","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].CinemaId: "1001:sessions" cannot be part of a key: holds ':'`, wantID: "x"},
		{name: "ScheduledFilmId with a colon", row: `{"ID":"x","CinemaId":"9","ScheduledFilmId":"F1:sessions","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ScheduledFilmId: "F1:sessions" cannot be part of a key: holds ':'`, wantID: "x"},
		{name: "screen name too long", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","ScreenName":"` + strings.Repeat("s", 4097) + `"}`, wantErr: `decode sessions: value[3].ScreenName: too large: 4097 bytes, more than 4096`, wantID: "x"},
		{name: "attributes too long", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SessionAttributesNames":[` + strings.Repeat(`"3D",`, 1400) + `"OV"]}`, wantErr: `decode sessions: value[3].SessionAttributesNames: too large: 4097 bytes, more than 4096`, wantID: "x"},
		{name: "status an object", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","Status":{}}`, wantErr: `decode sessions: value[3].Status: {} is not a session status`, wantID: "x"},
		{name: "status a fraction", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","Status":1.5}`, wantErr: `decode sessions: value[3].Status: 1.5 is not a session status`, wantID: "x"},
		{name: "ID an object", row: `{"ID":{"a":1},"CinemaId":"9","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ID: {"a":1} is not an id`},
		{name: "ID a bool", row: `{"ID":true,"CinemaId":"9","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].ID: true is not an id`},
		{name: "missing CinemaId", row: `{"ID":"x","Showtime":"2026-07-01T10:00:00"}`, wantErr: `decode sessions: value[3].CinemaId: missing`, wantID: "x"},
		{name: "seats in words", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SeatsAvailable":"lots"}`, wantErr: `decode sessions: value[3].SeatsAvailable: "lots" is not a whole number`, wantID: "x"},
		{name: "seats fractional", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SeatsAvailable":66.5}`, wantErr: `decode sessions: value[3].SeatsAvailable: "66.5" is not a whole number`, wantID: "x"},
		{name: "seats a bool", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SeatsAvailable":true}`, wantErr: `decode sessions: value[3].SeatsAvailable: true is not a whole number`, wantID: "x"},
		{name: "seats huge", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SeatsAvailable":1e300}`, wantErr: `decode sessions: value[3].SeatsAvailable: "1e300" is not a whole number`, wantID: "x"},
		{name: "attributes a string", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SessionAttributesNames":"OV"}`, wantErr: `decode sessions: value[3].SessionAttributesNames: "OV" is not an array of strings`, wantID: "x"},
		{name: "attributes of numbers", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SessionAttributesNames":[1]}`, wantErr: `decode sessions: value[3].SessionAttributesNames: [1] is not an array of strings`, wantID: "x"},
		{name: "screen name an object", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","ScreenName":{}}`, wantErr: `decode sessions: value[3].ScreenName: {} is not a string`, wantID: "x"},
		{name: "bad business date", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SessionBusinessDate":"soon"}`, wantErr: `decode sessions: value[3].SessionBusinessDate: "soon" is not a date`, wantID: "x"},
		{name: "row a string", row: `"1001-14164"`, wantErr: `decode sessions: value[3]: row is not an object: "1001-14164"`},
		{name: "row null", row: `null`, wantErr: `decode sessions: value[3]: row is not an object: null`},
		{name: "row an array", row: `[1,2]`, wantErr: `decode sessions: value[3]: row is not an object: [1,2]`},
		{name: "long value cut short", row: `{"ID":"x","CinemaId":"9","Showtime":"2026-07-01T10:00:00","ScreenName":[` + strings.Repeat(`"a",`, 40) + `"a"]}`, wantErr: `decode sessions: value[3].ScreenName: ["a","a","a","a","a","a","a","a","a","a","a","a","a","a","a","a"... is not a string`, wantID: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := decodeSessions([]json.RawMessage{json.RawMessage(tt.row)}, 3, zone, nil)
			if tt.wantErr != "" {
				if len(got) != 0 || len(errs) != 1 {
					t.Fatalf("decodeSessions(%s) = %d sessions, %d errors; want 0, 1", tt.row, len(got), len(errs))
				}
				e := errs[0]
				if e.Error() != tt.wantErr || e.ID != tt.wantID || e.List != "sessions" || e.Index != 3 {
					t.Errorf("decodeSessions(%s) error = %q (ID %q, List %q, Index %d), want %q (ID %q)", tt.row, e, e.ID, e.List, e.Index, tt.wantErr, tt.wantID)
				}
				return
			}
			if len(errs) != 0 || len(got) != 1 {
				t.Fatalf("decodeSessions(%s) = %d sessions, errors %v; want 1 session", tt.row, len(got), errs)
			}
			if line := sessionLine(got[0]); line != tt.want {
				t.Errorf("decodeSessions(%s)\n got %s\nwant %s", tt.row, line, tt.want)
			}
			if string(got[0].Raw) != tt.row {
				t.Errorf("Raw = %s, want the row as received %s", got[0].Raw, tt.row)
			}
		})
	}
}

func TestDecodeKeepsGoodRows(t *testing.T) {
	rows := []json.RawMessage{
		json.RawMessage(`{"ID":"a","CinemaId":"1","Showtime":"2026-07-01T10:00:00"}`),
		json.RawMessage(`{"ID":"b","CinemaId":"1","Showtime":"banana"}`),
		json.RawMessage(`7`),
		json.RawMessage(`{"ID":"d","CinemaId":"1","Showtime":"2026-07-01T12:00:00"}`),
	}
	got, errs := decodeSessions(rows, 10, func(string) *time.Location { return time.UTC }, nil)
	var ids []string
	for _, s := range got {
		ids = append(ids, s.ID)
	}
	if strings.Join(ids, ",") != "a,d" {
		t.Errorf("good sessions = %v, want [a d]", ids)
	}
	if len(errs) != 2 || errs[0].Index != 11 || errs[1].Index != 12 {
		t.Fatalf("errors = %v, want rows 11 and 12", errs)
	}
	if got := errs.IDs(); len(got) != 1 || got[0] != "b" {
		t.Errorf("RowErrors.IDs() = %v, want [b]", got)
	}
}

func TestDecodeCinemaRows(t *testing.T) {
	resolve := func(id, tz string) *time.Location {
		if tz == "" {
			return time.UTC
		}
		loc, err := LoadZone(tz)
		if err != nil {
			return time.UTC
		}
		return loc
	}
	tests := []struct {
		name    string
		row     string
		want    string
		wantErr string
	}{
		{
			name: "coordinates as numbers keep their text",
			row:  `{"ID":"1001","Name":"A","Latitude":52.52191840,"Longitude":-0.1e1,"TimeZoneId":"W. Europe Standard Time"}`,
			want: `1001|A|52.52191840|-0.1e1|W. Europe Standard Time|Europe/Berlin`,
		},
		{
			name: "coordinates as strings",
			row:  `{"ID":"1002","Name":"B","Latitude":"51.5136","Longitude":"-0.1313","TimeZoneId":"Europe/London"}`,
			want: `1002|B|51.5136|-0.1313|Europe/London|Europe/London`,
		},
		{
			name: "numeric id, no zone",
			row:  `{"ID":1003,"Name":"C","Latitude":null,"TimeZoneId":""}`,
			want: `1003|C||||UTC`,
		},
		{name: "missing ID", row: `{"Name":"x"}`, wantErr: `decode cinemas: value[0].ID: missing`},
		{name: "latitude an object", row: `{"ID":"1","Latitude":{}}`, wantErr: `decode cinemas: value[0].Latitude: {} is not a string`},
		{name: "not an object", row: `true`, wantErr: `decode cinemas: value[0]: row is not an object: true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := decodeCinemas([]json.RawMessage{json.RawMessage(tt.row)}, 0, resolve, nil)
			if tt.wantErr != "" {
				if len(got) != 0 || len(errs) != 1 || errs[0].Error() != tt.wantErr {
					t.Fatalf("decodeCinemas(%s) = %v, %v; want error %q", tt.row, got, errs, tt.wantErr)
				}
				return
			}
			if len(errs) != 0 || len(got) != 1 {
				t.Fatalf("decodeCinemas(%s) = %d cinemas, errors %v", tt.row, len(got), errs)
			}
			c := got[0]
			line := strings.Join([]string{c.ID, c.Name, c.Latitude, c.Longitude, c.TimeZoneID, c.Location.String()}, "|")
			if line != tt.want {
				t.Errorf("decodeCinemas(%s) = %s, want %s", tt.row, line, tt.want)
			}
		})
	}
}

func TestFilmRowsMerge(t *testing.T) {
	tests := []struct {
		name    string
		rows    []string
		want    []string // "id|title|runtime|opening|cinemas"
		wantErr []string
	}{
		{
			name: "same film in two cinemas, first row wins",
			rows: []string{
				`{"ScheduledFilmId":"HO1","CinemaId":"1002","Title":"First","RunTime":"120","OpeningDate":"2026-11-20T00:00:00"}`,
				`{"ScheduledFilmId":"HO1","CinemaId":"1001","Title":"Second","RunTime":"121"}`,
				`{"ScheduledFilmId":"HO2","CinemaId":"1001","Title":"Other","RunTime":95}`,
				`{"ScheduledFilmId":"HO1","CinemaId":"1002","Title":"Again"}`,
			},
			want: []string{"HO1|First|120|2026-11-20|1001,1002", "HO2|Other|95||1001"},
		},
		{
			name: "numeric ids and missing cinema",
			rows: []string{
				`{"ScheduledFilmId":4711,"CinemaId":1001,"RunTime":""}`,
				`{"ScheduledFilmId":"4711"}`,
				`{"ScheduledFilmId":4712}`,
			},
			want: []string{"4711||0||1001", "4712||0||"},
		},
		{
			name: "bad rows dropped with their cinema",
			rows: []string{
				`{"ScheduledFilmId":"HO1","CinemaId":"1001","RunTime":"2h"}`,
				`{"ScheduledFilmId":"HO1","CinemaId":"1002","RunTime":"120"}`,
				`{"CinemaId":"1003","RunTime":"120"}`,
				`{"ScheduledFilmId":"HO3","RunTime":"-5"}`,
				`{"ScheduledFilmId":"HO4","OpeningDate":"next week"}`,
			},
			want: []string{"HO1||120||1002"},
			wantErr: []string{
				`decode films: value[0].RunTime: "2h" is not a whole number`,
				`decode films: value[2].ScheduledFilmId: missing`,
				`decode films: value[3].RunTime: -5 is not a run time`,
				`decode films: value[4].OpeningDate: "next week" is not a date`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw []json.RawMessage
			for _, r := range tt.rows {
				raw = append(raw, json.RawMessage(r))
			}
			frs, errs := decodeFilmRows(raw, 0, nil)
			var got []string
			for _, f := range mergeFilms(frs) {
				got = append(got, fmt.Sprintf("%s|%s|%d|%s|%s", f.ID, f.Title, f.RunTimeMinutes, f.OpeningDate, strings.Join(f.CinemaIDs, ",")))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("films =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			var gotErr []string
			for _, e := range errs {
				gotErr = append(gotErr, e.Error())
			}
			if strings.Join(gotErr, "\n") != strings.Join(tt.wantErr, "\n") {
				t.Errorf("errors =\n%s\nwant\n%s", strings.Join(gotErr, "\n"), strings.Join(tt.wantErr, "\n"))
			}
		})
	}
}

func TestDecodeSeatRows(t *testing.T) {
	rows := []json.RawMessage{
		json.RawMessage(`{"ID":"a","SeatsAvailable":"12","SoldoutStatus":1,"Status":"O","odata.etag":"W/\"x\""}`),
		json.RawMessage(`{"ID":"b","SeatsAvailable":"many"}`),
		json.RawMessage(`{"ID":[]}`),
	}
	rows = append(rows,
		json.RawMessage(`{"ID":"c","SeatsAvailable":3,"Status":7}`),
		json.RawMessage(`{"ID":"d","SeatsAvailable":0}`),
		json.RawMessage(`{"ID":"e:f","SeatsAvailable":0}`),
	)
	got, errs := decodeSeats(rows, 0)
	want := []Seats{
		{ID: "a", SeatsAvailable: 12, SoldoutStatus: 1, Status: "O", State: keys.StateOpen, HasSoldoutStatus: true, HasStatus: true},
		{ID: "c", SeatsAvailable: 3, Status: "7", State: keys.StateCancelled, HasStatus: true},
		{ID: "d", State: keys.StateOpen}, // narrowed $select: nothing said of status
	}
	if !slices.Equal(got, want) {
		t.Errorf("decodeSeats =\n%+v\nwant\n%+v", got, want)
	}
	if !got[1].Cancelled() || got[2].Cancelled() {
		t.Errorf("Cancelled() = %v, %v; want true, false", got[1].Cancelled(), got[2].Cancelled())
	}
	if len(errs) != 3 || errs[0].ID != "b" || errs[1].ID != "" || errs[2].ID != "" || !errors.Is(errs[2], ErrUnsafeID) {
		t.Errorf("decodeSeats errors = %v, want rows 1 (ID b), 2 (no ID) and 5 (unsafe)", errs)
	}
}

// mustLocation loads an IANA zone or stops the test.
func mustLocation(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

func TestExtraFields(t *testing.T) {
	names := []string{"AllowTicketSales", "SalesChannels", "AreaCategoryCodes", "CustomerRating", "PlayThroughId", "Missing", "MinimumTicketPriceInCents", "formatcode"}
	row := `{"ID":"a","CinemaId":"9","Showtime":"2026-07-01T10:00:00","AllowTicketSales":true,` +
		`"SalesChannels":";WWW;KIOSK;","AreaCategoryCodes":[ "0000000001", "0000000002" ],` +
		`"CustomerRating":{ "Average" : 4.5, "Count":[1, 2] },"PlayThroughId":null,"MinimumTicketPriceInCents":1250,"FormatCode":"0000000001"}`
	got, errs := decodeSessions([]json.RawMessage{json.RawMessage(row)}, 0, func(string) *time.Location { return time.UTC }, names)
	if len(errs) != 0 || len(got) != 1 {
		t.Fatalf("decodeSessions = %v, %v", got, errs)
	}
	want := []string{"true", ";WWW;KIOSK;", `["0000000001","0000000002"]`, `{"Average":4.5,"Count":[1,2]}`, "", "", "1250", "0000000001"}
	if !slices.Equal(got[0].Extra, want) {
		t.Errorf("Extra = %q, want %q", got[0].Extra, want)
	}

	big := `{"ID":"a","CinemaId":"9","Showtime":"2026-07-01T10:00:00","SalesChannels":[` + strings.Repeat(`"WWW",`, 1000) + `"POS"]}`
	_, errs = decodeSessions([]json.RawMessage{json.RawMessage(big)}, 0, func(string) *time.Location { return time.UTC }, []string{"SalesChannels"})
	if len(errs) != 1 || !errors.Is(errs[0], ErrTooLarge) || errs[0].ID != "a" || errs[0].Field != "SalesChannels" {
		t.Errorf("an extra field of 6 KB: errors %v, want one ErrTooLarge for SalesChannels of row a", errs)
	}

	frs, errs := decodeFilmRows([]json.RawMessage{
		json.RawMessage(`{"ScheduledFilmId":"HO1","CinemaId":"1","TrailerUrl":"https://t.example/1.mp4"}`),
		json.RawMessage(`{"ScheduledFilmId":"HO1","CinemaId":"2","TrailerUrl":"https://t.example/other.mp4"}`),
	}, 0, []string{"TrailerUrl"})
	films := mergeFilms(frs)
	if len(errs) != 0 || len(films) != 1 || !slices.Equal(films[0].Extra, []string{"https://t.example/1.mp4"}) {
		t.Errorf("films = %+v, %v; want HO1 with the first row's TrailerUrl", films, errs)
	}

	cs, errs := decodeCinemas([]json.RawMessage{json.RawMessage(`{"ID":"1","HOPK":"0000000001","IsGiftStore":false}`)}, 0,
		func(string, string) *time.Location { return time.UTC }, []string{"HOPK", "IsGiftStore"})
	if len(errs) != 0 || len(cs) != 1 || !slices.Equal(cs[0].Extra, []string{"0000000001", "false"}) {
		t.Errorf("cinemas = %+v, %v; want HOPK and IsGiftStore", cs, errs)
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in   string
		want keys.State
	}{
		{"", keys.StateOpen}, {" ", keys.StateOpen}, {"0", keys.StateOpen}, {"O", keys.StateOpen}, {"o", keys.StateOpen}, {"Open", keys.StateOpen},
		{"1", keys.StateClosed}, {"Closed", keys.StateClosed}, {"CLOSED", keys.StateClosed},
		{"2", keys.StateInactive}, {"Inactive", keys.StateInactive},
		{"3", keys.StateImported}, {"Imported", keys.StateImported},
		{"4", keys.StatePlanned}, {"planned", keys.StatePlanned},
		{"5", keys.StateUnavailable}, {"Unavailable", keys.StateUnavailable},
		{"6", keys.StateApproved}, {"Approved", keys.StateApproved},
		{"7", keys.StateCancelled}, {"X", keys.StateCancelled}, {"x", keys.StateCancelled}, {"C", keys.StateCancelled},
		{"Cancelled", keys.StateCancelled}, {"Canceled", keys.StateCancelled}, {" cancelled ", keys.StateCancelled},
		{"8", keys.StateUnknown}, {"Unknown", keys.StateUnknown},
		{"9", keys.StateUnknown}, {"-1", keys.StateUnknown}, {"P", keys.StateUnknown}, {"sold out", keys.StateUnknown},
	}
	for _, tt := range tests {
		if got := ParseStatus(tt.in); got != tt.want {
			t.Errorf("ParseStatus(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"1001", "1001-14164", "HO00000720", "0000000001", "x'y", "a/b", "ü", strings.Repeat("9", 128)} {
		if err := CheckID(id); err != nil {
			t.Errorf("CheckID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"", " ", "1001 ", "a\tb", "a\nb", "1001:sessions", "{vista}", "a}", "a\x7fb", "a\u00a0b", "a\u2028b", "\xff", strings.Repeat("9", 129)} {
		if err := CheckID(id); !errors.Is(err, ErrUnsafeID) {
			t.Errorf("CheckID(%q) = %v, want ErrUnsafeID", id, err)
		}
	}
}

// TestCheckIDPlainAgrees holds CheckID, which passes ids of printable
// ASCII with a look at each byte, to the rune-by-rune rule, on every
// string of one and two bytes and at the length limit.
func TestCheckIDPlainAgrees(t *testing.T) {
	byRune := func(id string) bool {
		if id == "" || len(id) > MaxIDBytes || !utf8.ValidString(id) {
			return false
		}
		for _, r := range id {
			if r == ':' || r == '{' || r == '}' || unicode.IsSpace(r) || unicode.IsControl(r) {
				return false
			}
		}
		return true
	}
	ids := []string{"", strings.Repeat("a", MaxIDBytes), strings.Repeat("a", MaxIDBytes+1), "aü", "a\u0085"}
	for a := range 256 {
		ids = append(ids, string([]byte{byte(a)}))
		for b := range 256 {
			ids = append(ids, string([]byte{byte(a), byte(b)}))
		}
	}
	for _, id := range ids {
		if got, want := CheckID(id) == nil, byRune(id); got != want {
			t.Fatalf("CheckID(%q) passes: %v, want %v", id, got, want)
		}
	}
}

// TestFieldsAskedInAnotherOrder: get remembers where it found each
// field by the order a decoder asks for them; a decoder that asks for
// the same fields of same-named rows in another order still reads each
// field's own value.
func TestFieldsAskedInAnotherOrder(t *testing.T) {
	var rows []json.RawMessage
	for i := range 6 {
		rows = append(rows, json.RawMessage(fmt.Sprintf(`{"A":"a%d","B":"b%d","C":"c%d"}`, i, i, i)))
	}
	orders := [][]string{{"A", "B", "C"}, {"C", "A"}, {"B", "C", "A"}, {"A", "B", "C"}, {"B"}, {"C", "B", "A"}}
	got, errs := decodeRows(nil, nil, "test", rows, 0, func(r *row, _ json.RawMessage) (string, *DecodeError) {
		var read []string
		for _, f := range orders[r.index] {
			v, derr := r.text(f)
			if derr != nil {
				return "", derr
			}
			read = append(read, f+"="+v)
		}
		return strings.Join(read, " "), nil
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for i, line := range got {
		var want []string
		for _, f := range orders[i] {
			want = append(want, fmt.Sprintf("%s=%s%d", f, strings.ToLower(f), i))
		}
		if line != strings.Join(want, " ") {
			t.Errorf("row %d read %q, want %q", i, line, strings.Join(want, " "))
		}
	}
}

// TestRowsOfChangingShape decodes rows whose member names change from
// one row to the next (order, case, duplicates, fields absent or null,
// escaped names) in one list and each row alone: a row read after others
// must read as it does on its own, whatever get remembered from them.
func TestRowsOfChangingShape(t *testing.T) {
	rows := []json.RawMessage{
		json.RawMessage(`{"ID":"a","SeatsAvailable":1,"SoldoutStatus":0,"Status":"O"}`),
		json.RawMessage(`{"ID":"b","SeatsAvailable":2,"SoldoutStatus":0,"Status":"O"}`),
		json.RawMessage(`{"SeatsAvailable":3,"ID":"c","SoldoutStatus":0,"Status":"O"}`),
		json.RawMessage(`{"ID":"d","seatsavailable":4,"SoldoutStatus":0,"Status":"O"}`),
		json.RawMessage(`{"ID":"e","seatsavailable":5,"SoldoutStatus":0,"Status":"O"}`),
		json.RawMessage(`{"ID":"f","SeatsAvailable":6,"SoldoutStatus":0,"Status":"O","SeatsAvailable":66}`),
		json.RawMessage(`{"ID":"g","SeatsAvailable":7,"SoldoutStatus":0,"Status":"O","SeatsAvailable":77}`),
		json.RawMessage(`{"ID":"h","SeatsAvailable":8}`),
		json.RawMessage(`{"ID":"i","SeatsAvailable":null,"SoldoutStatus":1,"Status":"C"}`),
		json.RawMessage(`{"ID":"j","Seats\u0041vailable":10,"SoldoutStatus":0,"Status":"O"}`),
		json.RawMessage(`{"ID":"k","SEATSAVAILABLE":11,"SeatsAvailable":12,"SoldoutStatus":0,"Status":"O"}`),
		json.RawMessage(`{"ID":"l","SeatsAvailable":13,"SoldoutStatus":0,"Status":"O"}`),
		json.RawMessage(`{"ID":"m","SeatsUnlimited":14,"SoldoutStatus":0,"Status":"O"}`),
	}
	got, errs := decodeSeats(rows, 0)
	if len(errs) > 0 || len(got) != len(rows) {
		t.Fatalf("decodeSeats: %d rows, errors %v; want %d rows", len(got), errs, len(rows))
	}
	for i, raw := range rows {
		alone, errs := decodeSeats([]json.RawMessage{raw}, i)
		if len(errs) > 0 || len(alone) != 1 {
			t.Fatalf("row %d alone: %v", i, errs)
		}
		if got[i] != alone[0] {
			t.Errorf("row %d in the list = %+v, alone %+v", i, got[i], alone[0])
		}
	}
	if got[5].SeatsAvailable != 66 || got[6].SeatsAvailable != 77 || got[10].SeatsAvailable != 12 || got[3].SeatsAvailable != 4 || got[12].SeatsAvailable != 0 {
		t.Errorf("duplicates, case and a name alike: seats %d %d %d %d %d, want 66 77 12 4 0",
			got[5].SeatsAvailable, got[6].SeatsAvailable, got[10].SeatsAvailable, got[3].SeatsAvailable, got[12].SeatsAvailable)
	}
}

// TestPlainWholeAgrees: the byte loop that reads a plain number reads
// what parseWhole reads of the same text, and leaves to it whatever it
// cannot read exactly (a sign, a fraction, an exponent, 19 digits and
// more, which may not fit an int).
func TestPlainWholeAgrees(t *testing.T) {
	texts := []string{"", "-", "0", "-0", "7", "66", "-66", "007", "1.0", "1e3", "+5", " 5", "5 ",
		"999999999999999999", "-999999999999999999", "1000000000000000000", "9223372036854775807",
		"9223372036854775808", "-9223372036854775808", "12a", "1-2"}
	for range 2000 { // random numbers of 1 to 20 digits, some negative
		s := strconv.FormatUint(rand.Uint64()|1<<63, 10) // 19 or 20 digits
		s = s[:1+rand.IntN(len(s))]
		if rand.IntN(2) == 0 {
			s = "-" + s
		}
		texts = append(texts, s)
	}
	for _, s := range texts {
		n, ok := plainWhole([]byte(s))
		if !ok {
			continue
		}
		want, err := parseWhole(s)
		if err != nil || n != want || !isNumber([]byte(s)) {
			t.Errorf("plainWhole(%q) = %d; parseWhole: %d, %v", s, n, want, err)
		}
	}
	for _, s := range []string{"0", "-0", "66", "-66", "999999999999999999"} {
		if _, ok := plainWhole([]byte(s)); !ok {
			t.Errorf("plainWhole(%q) left it to parseWhole", s)
		}
	}
	for _, s := range []string{"1000000000000000000", "9223372036854775808", "1.5", "1e3", "007", "-", ""} {
		if n, ok := plainWhole([]byte(s)); ok {
			t.Errorf("plainWhole(%q) = %d, want it left to parseWhole", s, n)
		}
	}
}
