package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// SoakOptions configure Soak.
type SoakOptions struct {
	// Duration is how long the soak publishes at half the measured maximum rate.
	Duration time.Duration
	// Every is the sampling interval (a minute by default).
	Every time.Duration
	// Probe is how long the maximum rate is measured, publishing as fast as Concurrency
	// publishers go (a minute by default).
	Probe       time.Duration
	Concurrency int
	// Binary is the surveyhooks executable started as migrate, serve and worker.
	Binary string
	// EncryptionKeys is the SURVEYHOOKS_ENCRYPTION_KEYS of those processes.
	EncryptionKeys string
	// FailRate is the fraction of requests the receiver answers 500, at random; every
	// delivery has ten attempts 0.1 to 1 s apart (soakRetryDelays), so that no schedule runs
	// out on a receiver failing at random.
	FailRate float64
	// Out is the directory of the plot (soak.svg) and the samples (soak.csv).
	Out    string
	Logger *slog.Logger
	// Progress gets a line per sample; nil is quiet.
	Progress io.Writer
}

// SoakReport is what a soak measured.
type SoakReport struct {
	MaxRate   float64       `json:"maxRate"` // events/s the production shape delivered, fan-out 2
	Rate      float64       `json:"rate"`    // events/s of the soak
	Duration  time.Duration `json:"duration"`
	Published int           `json:"published"`
	Expected  int           `json:"expected"`
	Delivered int           `json:"delivered"`
	Series    []SoakSeries  `json:"series"`
	Plot      string        `json:"plot"`
	Samples   string        `json:"samples"`
}

// SoakSeries is one measured quantity over the soak, with its trend.
type SoakSeries struct {
	Name   string      `json:"name"`
	Unit   string      `json:"unit"`
	Points []SoakPoint `json:"points"`
	// SlopePerHour is the least-squares slope; Mean and Noise (the residuals' standard
	// deviation) tell whether it is more than noise.
	SlopePerHour float64 `json:"slopePerHour"`
	Mean         float64 `json:"mean"`
	Noise        float64 `json:"noise"`
}

// SoakPoint is one sample.
type SoakPoint struct {
	At    time.Duration `json:"at"`
	Value float64       `json:"value"`
}

// Soak runs the production shape (a two-node Temporal cluster on PostgreSQL, two API
// replicas and three workers as processes, surveyhooks' PostgreSQL, a receiver), measures
// the rate it delivers at, then publishes at half that rate for opts.Duration, sampling
// every process's RSS, goroutines and open database connections and the databases'
// sizes, and reports the slope of each.
func Soak(ctx context.Context, opts SoakOptions) (*SoakReport, error) {
	if opts.Duration <= 0 {
		return nil, errors.New("soak: no duration")
	}
	if opts.Every <= 0 {
		opts.Every = time.Minute
	}
	if opts.Probe <= 0 {
		opts.Probe = time.Minute
	}
	// More publishers only lengthen the backlog the probe leaves: 16 saturate the shape.
	if opts.Concurrency <= 0 || opts.Concurrency > 16 {
		opts.Concurrency = 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	sh, err := startShape(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer sh.stop()

	rep := &SoakReport{Duration: opts.Duration}
	fmt.Fprintf(opts.Progress, "soak: measuring the maximum rate for %v with %d publishers\n", opts.Probe, opts.Concurrency)
	if rep.MaxRate, err = sh.probe(ctx, opts); err != nil {
		return nil, err
	}
	rep.Rate = rep.MaxRate / 2
	fmt.Fprintf(opts.Progress, "soak: maximum %.1f events/s; soaking at %.1f events/s for %v\n", rep.MaxRate, rep.Rate, opts.Duration)

	samples := newSoakSamples()
	began := time.Now()
	loadCtx, stopLoad := context.WithTimeout(ctx, opts.Duration)
	defer stopLoad()
	loadDone := make(chan int, 1)
	go func() {
		loadDone <- sh.publish(loadCtx, load{duration: opts.Duration, concurrency: 16, rate: rep.Rate})
	}()
	tick := time.NewTicker(opts.Every)
	defer tick.Stop()
	for {
		sh.sample(ctx, samples, time.Since(began))
		fmt.Fprintf(opts.Progress, "soak: %v %s\n", time.Since(began).Round(time.Second), samples.last())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-loadCtx.Done():
		case <-tick.C:
			continue
		}
		break
	}
	rep.Published = <-loadDone
	if time.Since(began) > opts.Duration-opts.Every/2 {
		sh.sample(ctx, samples, time.Since(began))
	}
	if err := sh.drain(ctx, 5*time.Minute); err != nil {
		opts.Logger.Warn("soak: deliveries still missing", "err", err)
	}
	rep.Delivered, rep.Expected, _ = sh.pass.counts()
	rep.Series = samples.series()
	rep.Plot = filepath.Join(opts.Out, "soak.svg")
	if err := os.WriteFile(rep.Plot, soakPlot(rep), 0o644); err != nil {
		return nil, err
	}
	rep.Samples = filepath.Join(opts.Out, "soak.csv")
	if err := os.WriteFile(rep.Samples, samples.csv(), 0o644); err != nil {
		return nil, err
	}
	return rep, nil
}
