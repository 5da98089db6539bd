package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// soakPlotColors tell the processes apart.
var soakPlotColors = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

// soakPlot draws RSS and goroutines of every process over the soak as an SVG: one panel
// each, one line per process.
func soakPlot(rep *SoakReport) []byte {
	const (
		width, panelH = 900, 300
		left, right   = 70, 170
		top, gap      = 40, 70
	)
	panels := []struct{ prefix, title string }{
		{"rss ", "RSS (MB)"},
		{"goroutines ", "goroutines"},
	}
	var b strings.Builder
	height := top + len(panels)*(panelH+gap)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">surveyhooks soak: %.1f events/s (half of %.1f) for %v, fan-out 2</text>`+"\n",
		left, rep.Rate, rep.MaxRate, rep.Duration.Round(time.Minute))
	end := rep.Duration.Minutes()
	for _, s := range rep.Series {
		if n := len(s.Points); n > 0 {
			end = math.Max(end, s.Points[n-1].At.Minutes())
		}
	}
	plotW := float64(width - left - right)
	for i, panel := range panels {
		y0 := float64(top + i*(panelH+gap) + 20)
		var series []SoakSeries
		hi := 0.0
		for _, s := range rep.Series {
			if strings.HasPrefix(s.Name, panel.prefix) {
				series = append(series, s)
				for _, p := range s.Points {
					hi = math.Max(hi, p.Value)
				}
			}
		}
		hi = niceCeil(hi)
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-size="13">%s</text>`+"\n", left, y0-8, panel.title)
		fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%.0f" height="%d" fill="none" stroke="#999"/>`+"\n", left, y0, plotW, panelH)
		for k := 0; k <= 4; k++ {
			v := hi * float64(k) / 4
			y := y0 + float64(panelH) - float64(panelH)*float64(k)/4
			fmt.Fprintf(&b, `<line x1="%d" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
				left, float64(left)+plotW, y, y, left-6, y+4, trimFloat(v))
		}
		for k := 0; k <= 6; k++ {
			m := end * float64(k) / 6
			x := float64(left) + plotW*float64(k)/6
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%.0f min</text>`+"\n", x, y0+float64(panelH)+16, m)
		}
		for j, s := range series {
			color := soakPlotColors[j%len(soakPlotColors)]
			var pts []string
			for _, p := range s.Points {
				x := float64(left) + plotW*p.At.Minutes()/math.Max(end, 1e-9)
				y := y0 + float64(panelH) - float64(panelH)*p.Value/math.Max(hi, 1e-9)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
			ly := y0 + 14 + float64(j)*16
			fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/><text x="%.0f" y="%.1f">%s</text>`+"\n",
				float64(left)+plotW+10, float64(left)+plotW+28, ly-4, ly-4, color, float64(left)+plotW+32, ly,
				html.EscapeString(strings.TrimPrefix(s.Name, panel.prefix)))
		}
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
}

// WriteText writes the soak's table: per series, first and last value, mean, slope per
// hour and whether the trend over the soak exceeds the noise.
func (r *SoakReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %.1f events/s (half of the %.1f measured), fan-out 2, for %v: %d events published, %d of %d deliveries arrived (lost %d)\n\n",
		r.Rate, r.MaxRate, r.Duration, r.Published, r.Delivered, r.Expected, r.Expected-r.Delivered)
	b.WriteString("| series | first | last | mean | slope per hour | noise (sd) | trend over the soak |\n|---|---|---|---|---|---|---|\n")
	for _, s := range r.Series {
		if len(s.Points) == 0 {
			continue
		}
		unit := ""
		if s.Unit != "" {
			unit = " " + s.Unit
		}
		fmt.Fprintf(&b, "| %s | %s%s | %s%s | %s%s | %+.3g%s | %.3g | %s |\n", s.Name,
			trimFloat(s.Points[0].Value), unit, trimFloat(s.Points[len(s.Points)-1].Value), unit, trimFloat(s.Mean), unit,
			s.SlopePerHour, unit, s.Noise, verdict(s, r.Duration))
	}
	fmt.Fprintf(&b, "\nplot: %s\nsamples: %s\n", r.Plot, r.Samples)
	_, err := io.WriteString(w, b.String())
	return err
}

// verdict says whether a series moved over the soak by more than twice its noise and 5%
// of its mean.
func verdict(s SoakSeries, d time.Duration) string {
	change := s.SlopePerHour * d.Hours()
	if math.Abs(change) <= 2*s.Noise || math.Abs(change) <= 0.05*math.Abs(s.Mean) {
		return fmt.Sprintf("flat (%+.3g)", change)
	}
	if change > 0 {
		return fmt.Sprintf("grows %+.3g", change)
	}
	return fmt.Sprintf("shrinks %+.3g", change)
}
