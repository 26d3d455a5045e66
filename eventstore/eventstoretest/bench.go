package eventstoretest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

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
