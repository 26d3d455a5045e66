package api

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
)

// logCollector reports the log's head and each projection's progress at
// scrape time, from the engine's Status, so the figures are never older
// than the scrape.
type logCollector struct {
	store       eventstore.Store
	projections Projections
	timeout     time.Duration
}

var (
	headDesc = prometheus.NewDesc("payesh_log_head_position",
		"Global position of the newest event in the log.", nil, nil)
	positionDesc = prometheus.NewDesc("payesh_projection_position",
		"Global position up to which the read model reflects the log.", []string{"projection"}, nil)
	lagDesc = prometheus.NewDesc("payesh_projection_lag_events",
		"Events of the log the read model does not reflect yet (head minus position).", []string{"projection"}, nil)
	upDesc = prometheus.NewDesc("payesh_projection_live",
		"1 when the projection follows the log live, 0 while it starts or catches up, or when it is stopped.", []string{"projection"}, nil)
	failedDesc = prometheus.NewDesc("payesh_projection_failed",
		"1 when the projection stopped at an event it could not apply (or found another version of its tables), else 0.", []string{"projection"}, nil)
	appliedDesc = prometheus.NewDesc("payesh_projection_events_applied_total",
		"Events this process applied to the live read model.", []string{"projection"}, nil)
	retriesDesc = prometheus.NewDesc("payesh_projection_retries_total",
		"Failed attempts at applying a batch that were tried again.", []string{"projection"}, nil)
)

// Describe implements prometheus.Collector.
func (c *logCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{headDesc, positionDesc, lagDesc, upDesc, failedDesc, appliedDesc, retriesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Without the head (the store
// does not answer) the lag is left out rather than guessed.
func (c *logCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	head, err := c.store.Head(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(headDesc, err)
	} else {
		ch <- prometheus.MustNewConstMetric(headDesc, prometheus.GaugeValue, float64(head.Position))
	}
	if c.projections == nil {
		return
	}
	for _, p := range c.projections.Status() {
		ch <- prometheus.MustNewConstMetric(positionDesc, prometheus.GaugeValue, float64(p.Position), p.Name)
		if err == nil {
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(head.Position-min(p.Position, head.Position)), p.Name)
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, boolFloat(p.Ready()), p.Name)
		ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.GaugeValue,
			boolFloat(p.State == projections.StateFailed || p.State == projections.StateStopped), p.Name)
		ch <- prometheus.MustNewConstMetric(appliedDesc, prometheus.CounterValue, float64(p.Applied), p.Name)
		ch <- prometheus.MustNewConstMetric(retriesDesc, prometheus.CounterValue, float64(p.Retries), p.Name)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
