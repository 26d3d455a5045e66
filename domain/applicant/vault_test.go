package applicant_test

import (
	"testing"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/applicant/vaulttest"
)

func TestMemoryVault(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) applicant.Vault {
		t.Helper()
		return applicant.NewMemoryVault()
	})
}
