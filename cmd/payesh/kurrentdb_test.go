package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/eventstore/kurrentdb"
	"github.com/payesh/payesh/eventstore/kurrentdb/kurrenttest"
	"github.com/payesh/payesh/internal/pgtest"
)

// The tools on a KurrentDB log (the protocol test server), with the
// applicant vault and the read models in PostgreSQL: seed, verify, build
// and show the read models; then an event edited inside KurrentDB, which
// verify names.
func TestToolsOnKurrentDB(t *testing.T) {
	t.Setenv(backend.PseudonymKeyEnv, "")
	srv, err := kurrenttest.Start()
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	store := "kurrentdb://" + srv.Address() + "?tls=false"
	base, schema := pgtest.Schema(t)
	rm := base + "&schema=" + schema

	code, _, errOut := payesh(t, "seed", "--store", store, "--facilities", "50", "--seed", "3")
	require.Equal(t, 2, code, errOut)
	require.Contains(t, errOut, "--readmodels")

	code, out, errOut := payesh(t, "seed", "--store", store, "--readmodels", rm, "--facilities", "50", "--seed", "3")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "seeded 50 facilities")

	code, out = verify(t, store)
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "chain intact")

	code, out, errOut = payesh(t, "projections", "rebuild", "--store", store, "--readmodels", rm)
	require.Equal(t, 0, code, errOut)
	code, out, errOut = payesh(t, "projections", "status", "--store", store, "--readmodels", rm)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "facilities")
	require.NotContains(t, out, "failed")

	require.NoError(t, srv.SetEventData(kurrentdb.DefaultStream, 9, []byte(`{"tampered":true}`)))
	code, out = verify(t, store)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "TAMPERED at position 10")
}
