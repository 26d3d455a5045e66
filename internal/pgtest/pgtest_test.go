package pgtest

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSchemaCreatedAndDropped(t *testing.T) {
	var schema string
	t.Run("inner", func(t *testing.T) {
		var url string
		url, schema = Schema(t)
		require.Equal(t, URL(), url)
		require.Regexp(t, `^t_[0-9a-f]{16}$`, schema)
		require.True(t, schemaExists(t, schema), "schema exists during the test")
	})
	if schema == "" {
		t.Skip("inner test skipped")
	}
	require.False(t, schemaExists(t, schema), "schema dropped when the test ended")
}

func schemaExists(t *testing.T, schema string) bool {
	t.Helper()
	conn := Connect(t)
	var ok bool
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&ok))
	return ok
}

// fakeTB records Skip and Fatal instead of ending the real test.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Cleanup(func())        {}
func (f *fakeTB) Skip(args ...any)      { f.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (f *fakeTB) Fatal(args ...any)     { f.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (f *fakeTB) Fatalf(string, ...any) { f.fatal = "fatalf"; runtime.Goexit() }

func runFake(tb *fakeTB) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Schema(tb)
	}()
	<-done
}

func TestUnreachableSkipsOrFails(t *testing.T) {
	// Port 1 refuses connections at once.
	t.Setenv("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")

	t.Setenv("CI", "")
	t.Setenv("PAYESH_REQUIRE_POSTGRES", "")
	local := &fakeTB{TB: t}
	runFake(local)
	require.Contains(t, local.skipped, "unreachable")
	require.Empty(t, local.fatal)

	for _, env := range [][2]string{{"CI", "true"}, {"PAYESH_REQUIRE_POSTGRES", "1"}} {
		t.Setenv("CI", "")
		t.Setenv("PAYESH_REQUIRE_POSTGRES", "")
		t.Setenv(env[0], env[1])
		ci := &fakeTB{TB: t}
		runFake(ci)
		require.Empty(t, ci.skipped, env[0])
		require.Contains(t, ci.fatal, "not a skip", env[0])
	}
}
