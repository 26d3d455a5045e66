package postgres

import (
	"testing"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/applicant/vaulttest"
	"github.com/payesh/payesh/internal/pgtest"
)

func TestVaultContract(t *testing.T) {
	t.Parallel()
	vaulttest.Run(t, func(t *testing.T) applicant.Vault {
		url, schema := pgtest.Schema(t)
		return openTest(t, url, schema, nil).Vault()
	})
}
