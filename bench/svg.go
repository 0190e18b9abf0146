package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"os"
	"strings"
)

// chartSeries is one line of the chart.
type chartSeries struct {
	Name   string
	Color  string
	Dashed bool
	X, Y   []float64
}

// parallelSeries turns the parallel result into p50 (solid) and p95
// (dashed) lines per engine.
func parallelSeries(r *Report) []chartSeries {
	colors := map[string]string{"target": "#1f77b4", "compare": "#d62728"}
	var out []chartSeries
	for _, info := range r.Engines {
		for _, q := range []struct {
			name   string
			dashed bool
			get    func(Summary) float64
		}{{"p50", false, func(s Summary) float64 { return s.P50 }}, {"p95", true, func(s Summary) float64 { return s.P95 }}} {
			s := chartSeries{
				Name:   fmt.Sprintf("%s %s %s", shortName(info.Name), info.Version, q.name),
				Color:  colors[info.Role],
				Dashed: q.dashed,
			}
			for _, p := range r.Parallel.Points {
				if e, ok := p.Engines[info.Role]; ok && e.FirstLine.N > 0 {
					s.X = append(s.X, float64(p.N))
					s.Y = append(s.Y, q.get(e.FirstLine))
				}
			}
			if len(s.X) > 0 {
				out = append(out, s)
			}
		}
	}
	return out
}

func writeSVGFile(path string, r *Report) error {
	title := fmt.Sprintf("Parallel starts: time to first log line (%s)", r.Date)
	svg := renderChart(title, "containers started at once (N)", "ms until first line", parallelSeries(r))
	if err := os.WriteFile(path, svg, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// renderChart draws a line chart with a linear x axis from zero and a y
// axis that is linear from zero, or logarithmic when the values span more
// than a factor of 20 (one engine ten times slower than the other would
// otherwise flatten the faster one's curve onto the axis). Enough to read a
// curve, with no dependency.
func renderChart(title, xLabel, yLabel string, series []chartSeries) []byte {
	const (
		width, height         = 760, 440
		left, right, top, bot = 70, 250, 40, 50
		plotW, plotH          = width - left - right, height - top - bot
	)
	xMax, yMax, yMin := 1.0, 1.0, math.Inf(1)
	for _, s := range series {
		for i := range s.X {
			xMax = math.Max(xMax, s.X[i])
			yMax = math.Max(yMax, s.Y[i])
			if s.Y[i] > 0 {
				yMin = math.Min(yMin, s.Y[i])
			}
		}
	}
	logY := !math.IsInf(yMin, 1) && yMax/yMin > 20
	xStep := niceStep(xMax)
	xMax = math.Ceil(xMax/xStep) * xStep
	var yTicks []float64
	var py func(float64) float64
	if logY {
		lo := math.Pow(10, math.Floor(math.Log10(yMin)))
		hi := math.Pow(10, math.Ceil(math.Log10(yMax)))
		for d := lo; d <= hi*1.001; d *= 10 {
			for _, m := range []float64{1, 2, 5} {
				if v := d * m; v <= hi*1.001 {
					yTicks = append(yTicks, v)
				}
			}
		}
		span := math.Log10(hi) - math.Log10(lo)
		py = func(y float64) float64 {
			y = math.Max(y, lo)
			return top + plotH - (math.Log10(y)-math.Log10(lo))/span*plotH
		}
		yLabel += " (log scale)"
	} else {
		yStep := niceStep(yMax)
		yMax = math.Ceil(yMax/yStep) * yStep
		for i := 0.0; i*yStep <= yMax+yStep/2; i++ {
			yTicks = append(yTicks, i*yStep)
		}
		py = func(y float64) float64 { return top + plotH - y/yMax*plotH }
	}
	px := func(x float64) float64 { return left + x/xMax*plotW }

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(title))
	// Grid and ticks.
	for _, y := range yTicks {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(y), left+plotW, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, py(y)+4, tick(y))
	}
	for i := 0.0; i*xStep <= xMax+xStep/2; i++ {
		x := i * xStep
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", px(x), top, px(x), top+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), top+plotH+16, tick(x))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", left+plotW/2, height-12, esc(xLabel))
	fmt.Fprintf(&b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>`+"\n", top+plotH/2, top+plotH/2, esc(yLabel))
	// Lines, points and legend.
	for i, s := range series {
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		pts := make([]string, len(s.X))
		for j := range s.X {
			pts[j] = fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(s.Y[j]))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.Color, dash)
		for j := range s.X {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s N=%g: %.0f ms</title></circle>`+"\n",
				px(s.X[j]), py(s.Y[j]), s.Color, esc(s.Name), s.X[j], s.Y[j])
		}
		ly := top + 10 + i*20
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", left+plotW+14, ly, left+plotW+44, ly, s.Color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left+plotW+50, ly+4, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceStep is a tick step of 1, 2 or 5 times a power of ten giving about
// five ticks up to max.
func niceStep(max float64) float64 {
	raw := max / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func tick(v float64) string {
	if v == math.Trunc(v) && v < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
