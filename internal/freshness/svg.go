package freshness

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Chart is a set of panels side by side that share a legend and a
// logarithmic y axis of seconds: one panel per scenario, one line per
// policy.
type Chart struct {
	Title  string
	XLabel string
	YLabel string
	XFrom  float64 // the x axis, in the series' units
	XTo    float64
	Marks  []Mark        // vertical lines and bands drawn in every panel
	HLine  time.Duration // a dashed target line; 0 for none
	Panels []Panel
}

// Mark is a vertical line (From == To) or a shaded band with a label.
type Mark struct {
	From, To float64
	Label    string
}

// Panel is one scenario.
type Panel struct {
	Title  string
	Series []Series
}

// Series is one line; a negative Y leaves a gap.
type Series struct {
	Name string
	X    []float64
	Y    []time.Duration
}

var (
	palette = []string{"#1f6fb4", "#e8731a", "#2b9a3c", "#c0392b", "#7d3c98"}
	dashes  = []string{"", ` stroke-dasharray="7 3"`, ` stroke-dasharray="2 3"`}
)

// Layout of the chart, in SVG units.
const (
	panelW, panelH = 300.0, 240.0
	marginL        = 64.0
	gapX           = 28.0
	top            = 64.0
	bottom         = 52.0
	yMin, yMax     = 1.0, 3600.0 // seconds
)

// WriteSVG writes the chart as a standalone SVG document.
func (c Chart) WriteSVG(w io.Writer) error {
	n := max(len(c.Panels), 1)
	width := max(marginL+float64(n)*panelW+float64(n-1)*gapX+24, 720)
	height := top + panelH + bottom
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(b, `<text x="%.0f" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", marginL, esc(c.Title))

	// The legend: one entry per series name, in order of first appearance.
	var names []string
	seen := map[string]bool{}
	for _, p := range c.Panels {
		for _, s := range p.Series {
			if !seen[s.Name] {
				seen[s.Name] = true
				names = append(names, s.Name)
			}
		}
	}
	color, dash := map[string]string{}, map[string]string{}
	lx := marginL
	for i, name := range names {
		color[name] = palette[i%len(palette)]
		// Dashes tell lines apart where they run together.
		dash[name] = dashes[i%len(dashes)]
		fmt.Fprintf(b, `<line x1="%.1f" y1="36" x2="%.1f" y2="36" stroke="%s" stroke-width="2.5"%s/>`+"\n", lx, lx+22, color[name], dash[name])
		fmt.Fprintf(b, `<text x="%.1f" y="40">%s</text>`+"\n", lx+27, esc(name))
		lx += 40 + 7*float64(len(name))
	}
	if c.HLine > 0 {
		fmt.Fprintf(b, `<line x1="%.1f" y1="36" x2="%.1f" y2="36" stroke="#555" stroke-dasharray="4 3"/>`+"\n", lx, lx+22)
		fmt.Fprintf(b, `<text x="%.1f" y="40">target %s</text>`+"\n", lx+27, esc(c.HLine.String()))
	}

	for i, p := range c.Panels {
		x0 := marginL + float64(i)*(panelW+gapX)
		c.panel(b, p, x0, color, dash, i == 0)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n",
		marginL+(float64(n)*panelW+float64(n-1)*gapX)/2, height-10, esc(c.XLabel))
	fmt.Fprintf(b, `<text transform="translate(14 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n",
		top+panelH/2, esc(c.YLabel))
	fmt.Fprintln(b, `</svg>`)
	return b.Flush()
}

func (c Chart) panel(b *bufio.Writer, p Panel, x0 float64, color, dash map[string]string, yLabels bool) {
	xs := func(x float64) float64 { return x0 + (x-c.XFrom)/(c.XTo-c.XFrom)*panelW }
	ys := func(d time.Duration) float64 {
		s := math.Min(math.Max(d.Seconds(), yMin), yMax)
		return top + panelH - math.Log(s/yMin)/math.Log(yMax/yMin)*panelH
	}
	fmt.Fprintf(b, `<g><text x="%.1f" y="%.1f" text-anchor="middle" font-weight="bold">%s</text>`+"\n",
		x0+panelW/2, top-8, esc(p.Title))
	for _, m := range c.Marks {
		if m.From == m.To {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-dasharray="2 2"/>`+"\n",
				xs(m.From), top, xs(m.From), top+panelH)
		} else {
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f2f2f2"/>`+"\n",
				xs(m.From), top, xs(m.To)-xs(m.From), panelH)
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="#777" font-size="9">%s</text>`+"\n",
			xs(m.From)+2, top+10, esc(m.Label))
	}
	// Grid and y ticks.
	ticks := []struct {
		d     time.Duration
		label string
	}{{time.Second, "1 s"}, {10 * time.Second, "10 s"}, {time.Minute, "1 min"}, {10 * time.Minute, "10 min"}, {time.Hour, "1 h"}}
	for _, t := range ticks {
		y := ys(t.d)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y, x0+panelW, y)
		if yLabels {
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, y+4, t.label)
		}
	}
	if c.HLine > 0 {
		y := ys(c.HLine)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="4 3"/>`+"\n", x0, y, x0+panelW, y)
	}
	// X ticks every 10.
	for x := math.Ceil(c.XFrom/10) * 10; x <= c.XTo; x += 10 {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", xs(x), top+panelH, xs(x), top+panelH+4)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%g</text>`+"\n", xs(x), top+panelH+16, x)
	}
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", x0, top, panelW, panelH)
	// The first series last, so it lies on top where lines overlap.
	for i := len(p.Series) - 1; i >= 0; i-- {
		s := p.Series[i]
		// One polyline per run of points without a gap.
		var pts []string
		flush := func() {
			if len(pts) > 1 {
				fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="1.8" stroke-linejoin="round"%s points="%s"><title>%s</title></polyline>`+"\n",
					color[s.Name], dash[s.Name], strings.Join(pts, " "), esc(s.Name))
			}
			pts = pts[:0]
		}
		for i, x := range s.X {
			if i >= len(s.Y) || s.Y[i] < 0 || x < c.XFrom || x > c.XTo {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", xs(x), ys(s.Y[i])))
		}
		flush()
	}
	fmt.Fprintln(b, `</g>`)
}

func esc(s string) string {
	var sb strings.Builder
	xml.EscapeText(&sb, []byte(s))
	return sb.String()
}
