package backend

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/applicant"
)

func TestPseudonymKey(t *testing.T) {
	t.Setenv(PseudonymKeyEnv, "")
	key, dev, err := PseudonymKey("")
	require.NoError(t, err)
	require.True(t, dev)
	require.Equal(t, []byte(DevPseudonymKey), key)
	require.NoError(t, applicant.CheckPseudonymKey(key))

	want := bytes.Repeat([]byte{0xab}, 32)
	t.Setenv(PseudonymKeyEnv, hex.EncodeToString(want))
	key, dev, err = PseudonymKey("")
	require.NoError(t, err)
	require.False(t, dev)
	require.Equal(t, want, key)

	file := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(file, []byte(hex.EncodeToString(want[:31])+"cd\n"), 0o600))
	key, _, err = PseudonymKey(file) // the file wins over the environment
	require.NoError(t, err)
	require.Equal(t, append(want[:31:31], 0xcd), key)

	t.Setenv(PseudonymKeyEnv, "abcd")
	_, _, err = PseudonymKey("")
	require.ErrorContains(t, err, "at least 32")
	t.Setenv(PseudonymKeyEnv, "not hex")
	_, _, err = PseudonymKey("")
	require.Error(t, err)
}
