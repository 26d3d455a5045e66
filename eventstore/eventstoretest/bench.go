package eventstoretest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payesh/payesh/eventstore"
)

// Payload is a representative event payload (a facility registration with a
// sealed applicant) used by the benchmarks so that every backend and every
// baseline writes the same bytes.
var payload = []byte(`{"facility_id":"f-000000001","fiscal_year":1403,"program":"home-business","agency":"relief-committee","province":"IR-00","county":"IR-00-arak","applicant":{"ref":"9f2c4a0e6d1b7c3a5e8f0b2d4c6a8e1f3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a","key_id":"k-9f2c4a0e6d1b7c3a","ciphertext":"q1nKc2VhbGVkLWRhdGEtZm9yLWJlbmNobWFya3MtMDEyMzQ1Njc4OWFiY2RlZg=="},"title":"Carpet weaving workshop","requested_rials":1000000000,"jobs_promised":2}`)

// BenchAppend measures single-event appends, each to its own stream with
// expected version NoStream as a facility registration would, from the given
// number of concurrent writers. It reports events/s.
func BenchAppend(b *testing.B, st eventstore.Store, writers int) {
	b.Helper()
	ctx := context.Background()
	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				ev := Events(1, "facility.registered.v1")
				ev[0].Data = payload
				if _, err := st.Append(ctx, fmt.Sprintf("facility-b%d-%d", w, i), eventstore.NoStream, ev); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cs, ok := st.(interface{ CommitStats() eventstore.CommitStats }); ok {
		if s := cs.CommitStats(); s.Transactions > 0 {
			b.ReportMetric(float64(s.Requests)/float64(s.Transactions), "appends/tx")
		}
	}
}

// Payload returns a copy of the benchmark payload, for baselines that must
// write the same bytes.
func Payload() []byte { return append([]byte(nil), payload...) }

// CatchUpFilters are the filters BenchFilteredCatchUp is run with, named
// by the share of the log they select, against the synthetic log every
// backend's benchmark writes (straight into its events table, which is
// faster than appending and good enough for reads): event n (from 1) is in
// stream "reference" when n%100000 == 0, else, by n%100, below 60 in
// "facility-f-<n/8>", below 80 in "applicant-<n/3>", below 99 in
// "quota-1403-<n%5>" and otherwise in "quota-1401-home-business"; its type
// is "quota.allocated.v1" when n%1000 == 999. So: a dense prefix (60% of
// the events), a sparse one (1%), a rare one (1 event in 100,000) and a
// rare type (0.1%).
var CatchUpFilters = []struct {
	Name   string
	Filter eventstore.Filter
}{
	{"prefix=60%", eventstore.Filter{StreamPrefixes: []string{"facility-"}}},
	{"prefix=1%", eventstore.Filter{StreamPrefixes: []string{"quota-1401-"}}},
	{"prefix=0.001%", eventstore.Filter{StreamPrefixes: []string{"reference"}}},
	{"type=0.1%", eventstore.Filter{Types: []string{"quota.allocated.v1"}}},
}

// BenchFilteredCatchUp reads every event filter selects from position 0,
// as a subscription catching up does, in pages of 1,000: with ReadPage,
// going on from each page's Through until it reaches the head, or, with
// pages false, with ReadAll until a page comes back empty (the way a reader
// without ReadPage must). It reports the log's events per second (matched or
// not: the rate at which the reader gets through the log), the calls made
// and the slowest of them.
func BenchFilteredCatchUp(b *testing.B, st eventstore.Store, filter eventstore.Filter, pages bool) {
	b.Helper()
	ctx := context.Background()
	head, err := st.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var calls, matched int
	var slowest time.Duration
	b.ResetTimer()
	for range b.N {
		var after uint64
		for {
			start := time.Now()
			var evs []eventstore.Event
			done := false
			if pages {
				p, err := st.ReadPage(ctx, after, 1000, filter)
				if err != nil {
					b.Fatal(err)
				}
				evs, after, done = p.Events, p.Through, p.Through >= p.Head
			} else {
				evs, err = st.ReadAll(ctx, after, 1000, filter)
				if err != nil {
					b.Fatal(err)
				}
				if done = len(evs) == 0; !done {
					after = evs[len(evs)-1].Position
				}
			}
			slowest = max(slowest, time.Since(start))
			calls++
			matched += len(evs)
			if done {
				break
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(head.Position)*float64(b.N)/b.Elapsed().Seconds(), "log-events/s")
	b.ReportMetric(float64(matched)/float64(b.N), "matched")
	b.ReportMetric(float64(calls)/float64(b.N), "calls")
	b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest-ms")
}
