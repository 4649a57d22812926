package freshness

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Second)
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{
		{50, 50 * time.Second},
		{90, 90 * time.Second},
		{99, 99 * time.Second},
		{99.5, 100 * time.Second},
		{100, 100 * time.Second},
		{0.1, time.Second},
	}
	for _, tt := range tests {
		if got := Percentile(ds, tt.p); got != tt.want {
			t.Errorf("Percentile(1..100 s, %v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := Percentile(nil, 99); got != 0 {
		t.Errorf("Percentile(nil, 99) = %v, want 0", got)
	}
	s := Summarize([]time.Duration{3 * time.Second, time.Second, 2 * time.Second})
	if want := (Summary{N: 3, P50: 2 * time.Second, P90: 3 * time.Second, P99: 3 * time.Second, Max: 3 * time.Second}); s != want {
		t.Errorf("Summarize(3 s, 1 s, 2 s) = %+v, want %+v", s, want)
	}
}

func TestChangeTimes(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	// Seats fall by one at each of these instants.
	steps := []time.Time{
		t0.Add(1500 * time.Millisecond),
		t0.Add(1501 * time.Millisecond), // two changes a millisecond apart
		t0.Add(37*time.Second + 250*time.Millisecond),
		t0.Add(10 * time.Minute),
	}
	seats := func(at time.Time) int {
		n := 100
		for _, s := range steps {
			if !at.Before(s) {
				n--
			}
		}
		return n
	}
	// Each found at or at most eps after the change.
	within := func(got, want time.Time) bool { return !got.Before(want) && got.Sub(want) <= time.Millisecond }
	got := ChangeTimes(seats, t0, t0.Add(10*time.Minute), time.Millisecond)
	if !slices.EqualFunc(got, steps, within) {
		t.Errorf("ChangeTimes = %v, want %v (+1ms at most)", got, steps)
	}
	if got := ChangeTimes(seats, t0.Add(time.Minute), t0.Add(2*time.Minute), time.Millisecond); got != nil {
		t.Errorf("ChangeTimes over a minute without change = %v, want none", got)
	}
	if got := ChangeTimes(seats, t0.Add(time.Minute), t0, time.Millisecond); got != nil {
		t.Errorf("ChangeTimes over an empty span = %v, want none", got)
	}
}

func TestFirstIn(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	readings := []obs{
		{at: at(0), in: at(0.2)},
		{at: at(10), in: at(13)},   // slow
		{at: at(11), in: at(11.5)}, // asked later, in first
		{at: at(20), in: at(20)},
	}
	tests := []struct {
		change float64
		want   float64
		ok     bool
	}{
		{0, 0.2, true},
		{5, 11.5, true},
		{10, 11.5, true},
		{10.5, 11.5, true},
		{12, 20, true},
		{21, 0, false},
	}
	for _, tt := range tests {
		got, ok := firstIn(readings, at(tt.change))
		if ok != tt.ok || (ok && !got.Equal(at(tt.want))) {
			t.Errorf("firstIn(change at %vs) = %v, %v, want %vs, %v", tt.change, got.Sub(t0), ok, tt.want, tt.ok)
		}
	}
}

func TestLogNormal(t *testing.T) {
	l := LogNormal{Median: 150 * time.Millisecond, P99: 2 * time.Second}
	r := rand.New(rand.NewPCG(1, 2))
	ds := make([]time.Duration, 200000)
	for i := range ds {
		ds[i] = l.Draw(r)
	}
	s := Summarize(ds)
	if s.P50 < 140*time.Millisecond || s.P50 > 160*time.Millisecond {
		t.Errorf("median of %+v = %v, want about 150ms", l, s.P50)
	}
	if s.P99 < 1900*time.Millisecond || s.P99 > 2100*time.Millisecond {
		t.Errorf("p99 of %+v = %v, want about 2s", l, s.P99)
	}
}

func TestWriteSVG(t *testing.T) {
	res := []Result{
		{Scenario: "normal", Policy: "warmer", Curve: []time.Duration{-1, 2 * time.Second, 11 * time.Second, -1, 5 * time.Minute}},
		{Scenario: "normal", Policy: `a<b&"c"`, Curve: []time.Duration{time.Hour, 2 * time.Hour}},
		{Scenario: "slow", Policy: "warmer", Curve: []time.Duration{-1, -1}},
	}
	var b bytes.Buffer
	if err := Plot(res, 11*time.Second).WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(&b)
	var root string
	polylines := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
				if se.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace = %q, want the SVG namespace", se.Name.Space)
				}
			}
			if se.Name.Local == "polyline" {
				polylines++
				for _, a := range se.Attr {
					if a.Name.Local == "points" && strings.Contains(a.Value, "NaN") {
						t.Errorf("polyline points hold NaN: %s", a.Value)
					}
				}
			}
		}
	}
	if root != "svg" {
		t.Errorf("root element = %q, want svg", root)
	}
	// The first line breaks at its gap into one of two points and one of
	// one (not drawn); the second is one line; the third has no points.
	if polylines != 2 {
		t.Errorf("%d polylines, want 2", polylines)
	}
}

func TestSumCalls(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_hset:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_evalsha:calls=3,usec=300\r\ncmdstat_info:calls=7,usec=1\r\ncmdstat_bogus:calls=x\r\n"
	if got := sumCalls(info); got != 15 {
		t.Errorf("sumCalls = %d, want 15 (hset 12 + evalsha 3, info left out)", got)
	}
}
