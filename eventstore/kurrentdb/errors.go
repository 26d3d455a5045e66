package kurrentdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/payesh/payesh/eventstore"
)

// ErrUnavailable is matched by errors from a KurrentDB node that cannot be
// reached or is not ready. The client reconnects on its own; an append
// that fails with it may or may not have been written, and a retry with
// the same event IDs says which.
var ErrUnavailable = errors.New("kurrentdb: server unavailable")

// Errors the store handles itself and never returns.
var (
	// errLogMoved: another writer appended to the log stream since the
	// index was caught up; the append is decided again.
	errLogMoved = errors.New("kurrentdb: the log stream moved")
	// errNotFound: the log stream does not exist yet, i.e. the log is empty.
	errNotFound = errors.New("kurrentdb: stream not found")
)

// translate turns a client error into the error callers branch on. It is
// the only place that knows the client's error codes; the client's error
// stays in the chain.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var e *esdb.Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Code() {
	case esdb.ErrorCodeWrongExpectedVersion:
		return fmt.Errorf("%w: %w", errLogMoved, err)
	case esdb.ErrorCodeResourceNotFound:
		return fmt.Errorf("%w: %w", errNotFound, err)
	case esdb.ErrorCodeConnectionClosed:
		return fmt.Errorf("%w: %w", eventstore.ErrClosed, err)
	case esdb.ErrorCodeDeadlineExceeded:
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	case esdb.ErrorUnavailable, esdb.ErrorCodeNotLeader:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// The client files some failures (a cancelled call, an error met while
	// reading) under "unknown"; the gRPC status underneath says what
	// happened.
	switch status.Code(e.Err()) {
	case codes.Canceled:
		return fmt.Errorf("%w: %w", context.Canceled, err)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	case codes.Unavailable:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return fmt.Errorf("kurrentdb: %w", err)
}
