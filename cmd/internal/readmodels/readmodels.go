// Package readmodels lists the projectors the binaries run, so that
// payesh (rebuilds, status) and payeshd (live projections, queries) always
// agree on the set.
package readmodels

import (
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/deviations"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/inspections"
	"github.com/payesh/payesh/projections/quotas"
)

// Projectors returns every read model's projector, in the order they are
// rebuilt.
func Projectors() []projections.Projector {
	return []projections.Projector{
		facilities.New(),
		quotas.New(),
		inspections.New(),
		deviations.New(),
		banks.New(),
	}
}
