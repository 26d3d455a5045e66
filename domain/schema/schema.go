// Package schema lists every event type Payesh writes, so the stores' readers
// (the ledger, projections, export and replay) decode with one registry.
package schema

import (
	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/checkpoint"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/reference"
)

// Types returns every event type, grouped by aggregate.
func Types() [][]domain.EventType {
	return [][]domain.EventType{
		reference.EventTypes(),
		applicant.EventTypes(),
		facility.EventTypes(),
		quota.EventTypes(),
		checkpoint.EventTypes(),
	}
}

// Registry returns a registry of every event type. The type names are
// distinct by construction (each is prefixed with its aggregate), which the
// package's test checks.
func Registry() *domain.Registry {
	r, err := domain.NewRegistry(Types()...)
	if err != nil {
		panic(err) // unreachable while the test passes: names are fixed at compile time
	}
	return r
}
