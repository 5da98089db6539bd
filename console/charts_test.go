package console

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/surveyhooks/surveyhooks/client"
)

func TestChartScales(t *testing.T) {
	for n, want := range map[int]float64{0: 2, 1: 2, 2: 2, 3: 4, 5: 10, 11: 20, 39: 40, 41: 100, 999: 1000} {
		require.Equal(t, want, countCeil(n), n)
	}
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 7: 10, 10: 10, 11: 20, 240: 500} {
		require.InDelta(t, want, niceCeil(v), 1e-9, v)
	}
}

// TestChartsAreInertSVG: the charts draw one bar per outcome present and a line or dot per
// run of buckets with attempts, with classes for colour and no inline style or script,
// which the CSP would refuse.
func TestChartsAreInertSVG(t *testing.T) {
	buckets := []client.WebhookStatsBucket{
		{Attempts: 3, Successes: 2, Failures: 1, P50Ms: 10, P95Ms: 50},
		{},
		{Attempts: 1, Successes: 1, P50Ms: 25, P95Ms: 25},
		{Attempts: 4, Successes: 4, P50Ms: 10, P95Ms: 100},
	}
	volume, latency := string(volumeChart(buckets)), string(latencyChart(buckets))
	require.Equal(t, 3, strings.Count(volume, `<rect class="ok"`))
	require.Equal(t, 1, strings.Count(volume, `<rect class="bad"`))
	require.Contains(t, volume, `aria-label="Attempts over time: 7 delivered, 1 failed`)
	// Each percentile: a dot for the first bucket (the gap ends its run), a line for the last two.
	require.Equal(t, 2, strings.Count(latency, "<circle"))
	require.Equal(t, 2, strings.Count(latency, "<polyline"))
	for _, svg := range []string{volume, latency} {
		require.NotContains(t, svg, "style=")
		require.NotContains(t, svg, "<script")
		require.True(t, strings.HasPrefix(svg, "<svg") && strings.HasSuffix(svg, "</svg>"))
	}
	require.Contains(t, string(volumeChart(nil)), "</svg>", "an empty window still draws its axis")
}

func TestStepWords(t *testing.T) {
	for step, want := range map[string]string{"1h0m0s": "hour", "6h0m0s": "6 hours", "24h0m0s": "day", "48h0m0s": "2 days", "30m0s": "30m0s", "soon": "soon"} {
		if got := stepWords(step); got != want {
			t.Errorf("stepWords(%q) = %q, want %q", step, got, want)
		}
	}
}
