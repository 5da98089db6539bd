package console

import (
	"fmt"
	"html/template"
	"math"
	"strings"

	"github.com/surveyhooks/surveyhooks/client"
)

// The charts are SVG drawn here from the stats buckets: no script, no library, and the
// CSP's 'self' is all they need. Colours come from classes in console.css. Each chart has a
// text alternative (aria-label) that says what it shows.

const (
	chartW, chartH = 640, 180
	chartPadL      = 44
	chartPadB      = 22
	chartPadT      = 8
)

// volumeChart draws delivered and failed attempts per bucket as stacked bars.
func volumeChart(buckets []client.WebhookStatsBucket) template.HTML {
	peak := 0
	delivered, failed := 0, 0
	for _, b := range buckets {
		peak = max(peak, b.Successes+b.Failures)
		delivered += b.Successes
		failed += b.Failures
	}
	var svg strings.Builder
	label := fmt.Sprintf("Attempts over time: %d delivered, %d failed, at most %d in one bucket.", delivered, failed, peak)
	openChart(&svg, label)
	top := countCeil(peak)
	axis(&svg, top, "")
	if n := len(buckets); n > 0 {
		plotW := float64(chartW - chartPadL)
		slot := plotW / float64(n)
		barW := math.Max(1, slot*0.8)
		for i, b := range buckets {
			x := float64(chartPadL) + float64(i)*slot + (slot-barW)/2
			ok := scale(float64(b.Successes), top)
			bad := scale(float64(b.Failures), top)
			base := float64(chartH - chartPadB)
			if ok > 0 {
				fmt.Fprintf(&svg, `<rect class="ok" x="%.1f" y="%.1f" width="%.1f" height="%.1f"></rect>`, x, base-ok, barW, ok)
			}
			if bad > 0 {
				fmt.Fprintf(&svg, `<rect class="bad" x="%.1f" y="%.1f" width="%.1f" height="%.1f"></rect>`, x, base-ok-bad, barW, bad)
			}
		}
	}
	svg.WriteString(`</svg>`)
	return template.HTML(svg.String())
}

// latencyChart draws the p50 and p95 latency per bucket as lines; buckets without
// attempts leave a gap.
func latencyChart(buckets []client.WebhookStatsBucket) template.HTML {
	peak := 0.0
	for _, b := range buckets {
		if b.Attempts > 0 {
			peak = math.Max(peak, float64(b.P95Ms))
		}
	}
	var svg strings.Builder
	openChart(&svg, fmt.Sprintf("Latency over time, p50 and p95: p95 at most %.0f ms.", peak))
	top := niceCeil(peak)
	axis(&svg, top, " ms")
	if n := len(buckets); n > 0 {
		slot := float64(chartW-chartPadL) / float64(n)
		for _, line := range []struct {
			class string
			value func(client.WebhookStatsBucket) float32
		}{{"p50", func(b client.WebhookStatsBucket) float32 { return b.P50Ms }}, {"p95", func(b client.WebhookStatsBucket) float32 { return b.P95Ms }}} {
			type point struct{ x, y float64 }
			var points []point
			// flush draws the run of buckets with attempts so far; a lone one is a dot.
			flush := func() {
				switch len(points) {
				case 0:
				case 1:
					fmt.Fprintf(&svg, `<circle class="%s" cx="%.1f" cy="%.1f" r="2.5"></circle>`, line.class, points[0].x, points[0].y)
				default:
					coords := make([]string, len(points))
					for i, p := range points {
						coords[i] = fmt.Sprintf("%.1f,%.1f", p.x, p.y)
					}
					fmt.Fprintf(&svg, `<polyline class="%s" points="%s"></polyline>`, line.class, strings.Join(coords, " "))
				}
				points = points[:0]
			}
			for i, b := range buckets {
				if b.Attempts == 0 {
					flush()
					continue
				}
				points = append(points, point{x: float64(chartPadL) + (float64(i)+0.5)*slot,
					y: float64(chartH-chartPadB) - scale(float64(line.value(b)), top)})
			}
			flush()
		}
	}
	svg.WriteString(`</svg>`)
	return template.HTML(svg.String())
}

func openChart(svg *strings.Builder, label string) {
	fmt.Fprintf(svg, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" preserveAspectRatio="none">`,
		chartW, chartH, template.HTMLEscapeString(label))
}

// axis draws the baseline and three value lines up to top.
func axis(svg *strings.Builder, top float64, unit string) {
	for i := 0; i <= 2; i++ {
		v := top * float64(i) / 2
		y := float64(chartH-chartPadB) - scale(v, top)
		fmt.Fprintf(svg, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"></line>`, chartPadL, chartW, y, y)
		fmt.Fprintf(svg, `<text class="tick" x="%d" y="%.1f" text-anchor="end">%s%s</text>`, chartPadL-6, y+4, formatTick(v), unit)
	}
}

func scale(v, top float64) float64 {
	if top <= 0 {
		return 0
	}
	return v / top * float64(chartH-chartPadB-chartPadT)
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten, so that the ticks read well.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// countCeil rounds a count up to 2, 4 or 10 times a power of ten (2 at least), so that the
// middle tick is a whole number too.
func countCeil(n int) float64 {
	p := 1.0
	for {
		for _, m := range []float64{2, 4, 10} {
			if float64(n) <= m*p {
				return m * p
			}
		}
		p *= 10
	}
}

func formatTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}
