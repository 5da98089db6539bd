package bench

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	require.Zero(t, median(nil))
	require.Equal(t, 3.0, median([]float64{5, 3, 1}))
	require.Equal(t, 2.5, median([]float64{4, 1, 3, 2}))
}

// Ratios compare the medians of the maximum-rate passes, whatever their order; half-rate
// passes count for neither.
func TestRoundsCompareMedians(t *testing.T) {
	t.Parallel()
	r := &Report{Settings: Settings{Rounds: 3}}
	for i, pass := range []string{"", "round 2", "round 3"} {
		r.Scenarios = append(r.Scenarios,
			Result{Scenario: ScenarioOurs, Pass: pass, DeliveriesPerSec: []float64{150, 130, 140}[i]},
			Result{Scenario: ScenarioBare, Pass: pass, DeliveriesPerSec: []float64{200, 220, 230}[i]})
	}
	r.Scenarios = append(r.Scenarios, Result{Scenario: ScenarioOurs, Pass: "half", DeliveriesPerSec: 70})
	r.summarizeRounds()

	require.Equal(t, []Rounds{
		{Scenario: ScenarioOurs, DeliveriesPerSec: []float64{150, 130, 140}, Median: 140},
		{Scenario: ScenarioBare, DeliveriesPerSec: []float64{200, 220, 230}, Median: 220},
	}, r.Rounds)
	require.NotNil(t, r.Ratios)
	require.InDelta(t, 140.0/220, r.Ratios.OursToBare, 1e-9)
	require.Zero(t, r.Ratios.OursToRaw)
	require.Equal(t, 220.0, r.medianOf(ScenarioBare, func(res Result) float64 { return res.DeliveriesPerSec }))

	var out strings.Builder
	require.NoError(t, r.WriteText(&out))
	require.Contains(t, out.String(), "maximum-rate deliveries/s over 3 rounds")
	require.Contains(t, out.String(), "median    140.0  (150.0, 130.0, 140.0)")
	require.Contains(t, out.String(), "ours/bare     0.64  (deliveries/s, medians)")
}
