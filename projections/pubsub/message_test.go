package pubsub

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
)

func TestEventOfInvertsDelivery(t *testing.T) {
	at := time.Date(2024, 5, 1, 9, 30, 0, 123000, time.UTC)
	full := eventstore.Event{
		Position: 42, Stream: "facility-7", Version: 3, ID: "0190f1a2-0000-7000-8000-000000000001",
		Type: "facility.reviewed.v1", Data: []byte(`{"decision":"approved"}`),
		OccurredAt: at, RecordedAt: at.Add(time.Hour), BackdateReason: "paper form",
		Actor:          eventstore.Actor{ID: "u1", Role: "agency", Org: "welfare"},
		IdempotencyKey: "k1", CorrelationID: "c1", CausationID: "x1",
	}
	bare := full
	bare.BackdateReason, bare.Actor.Org, bare.IdempotencyKey, bare.CorrelationID, bare.CausationID = "", "", "", "", ""
	for _, e := range []eventstore.Event{full, bare} {
		got, err := EventOf(decode(&e).message())
		require.NoError(t, err)
		require.Equal(t, e, got)
	}
}

func TestEventOfRefusesWhatIsNotAnEvent(t *testing.T) {
	_, err := EventOf(message.NewMessage("u", []byte("x")))
	require.ErrorIs(t, err, ErrNotAnEvent)

	e := eventstore.Event{Position: 1, Stream: "s", Version: 1, ID: "i", Type: "t", Data: []byte("{}")}
	for key, bad := range map[string]string{
		MetaPosition: "-1", MetaVersion: "x", MetaOccurredAt: "yesterday", MetaRecordedAt: "",
	} {
		msg := decode(&e).message()
		msg.Metadata.Set(key, bad)
		_, err := EventOf(msg)
		require.Error(t, err, key)
		if key != MetaPosition || bad != "" {
			require.ErrorContains(t, err, key)
		}
	}
}
