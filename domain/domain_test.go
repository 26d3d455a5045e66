package domain_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
)

type noted struct {
	Text string `json:"text"`
}

func (noted) EventType() string { return "test.noted.v1" }

func TestRegistryDecodesValues(t *testing.T) {
	reg, err := domain.NewRegistry([]domain.EventType{domain.Type[noted]()})
	require.NoError(t, err)
	require.True(t, reg.Has("test.noted.v1"))
	require.Equal(t, []string{"test.noted.v1"}, reg.Names())

	e, err := reg.Decode("test.noted.v1", []byte(`{"text":"سلام"}`))
	require.NoError(t, err)
	require.Equal(t, noted{Text: "سلام"}, e)

	for name, data := range map[string]string{
		"unknown field": `{"text":"a","extra":1}`,
		"wrong type":    `{"text":5}`,
		"trailing data": `{"text":"a"}{"text":"b"}`,
		"not json":      `text`,
	} {
		_, err := reg.Decode("test.noted.v1", []byte(data))
		require.Error(t, err, name)
	}
	_, err = reg.Decode("test.unknown.v1", []byte(`{}`))
	require.ErrorContains(t, err, "unknown event type")
}

func TestRegistryRefusesDuplicateNames(t *testing.T) {
	_, err := domain.NewRegistry([]domain.EventType{domain.Type[noted]()}, []domain.EventType{domain.Type[noted]()})
	require.ErrorContains(t, err, "registered twice")
}

func TestErrorsMatchTheirSentinels(t *testing.T) {
	var v domain.Validator
	require.NoError(t, v.Err())
	v.Check(false, "amount_rials", "positive", "must be positive", "باید مثبت باشد")
	v.Check(true, "jobs", "x", "never", "")
	err := v.Err()
	require.ErrorIs(t, err, domain.ErrInvalid)
	var ve *domain.ValidationError
	require.True(t, errors.As(err, &ve))
	require.Len(t, ve.Fields, 1)
	require.Equal(t, "invalid input: amount_rials: must be positive", err.Error())

	require.ErrorIs(t, &domain.TransitionError{Aggregate: "facility", State: "closed", Command: "disburse"}, domain.ErrIllegalTransition)
	require.ErrorIs(t, &domain.NotFoundError{Kind: "bank", ID: "x"}, domain.ErrNotFound)
	require.ErrorIs(t, &domain.ConflictError{Reason: "r"}, domain.ErrConflict)
	require.ErrorIs(t, &domain.QuotaExceededError{Account: "a", Free: 1, Requested: 2}, domain.ErrConflict)
	require.NotErrorIs(t, &domain.QuotaExceededError{}, domain.ErrInvalid)
}

func TestDeciderFold(t *testing.T) {
	d := domain.Decider[int, int]{
		Initial: func() int { return 10 },
		Evolve:  func(s int, e domain.Recorded) int { return s + int(e.Version) },
	}
	require.Equal(t, 10, d.Fold(nil))
	require.Equal(t, 13, d.Fold([]domain.Recorded{{Version: 1}, {Version: 2}}))
}
