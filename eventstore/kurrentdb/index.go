package kurrentdb

import (
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/payesh/payesh/eventstore"
)

// index is what KurrentDB cannot answer about the log stream by itself:
// which positions hold each Payesh stream's events and which position holds
// each event ID. It is built from the log stream alone, so every process
// builds the same one, and it only grows.
//
// Memory per event: 8 bytes in its stream's position list and, for a UUID
// ID, a 24-byte map entry (a 16-byte key and the position); with the maps'
// and slices' spare capacity, 40 to 70 bytes. Other IDs cost their string
// besides. Each stream's name is held once.
type index struct {
	// catchMu lets one catch-up read the log stream at a time.
	// requests counts catch-up requests; served is the count a finished
	// catch-up had seen when it started, so a request it covers needs no
	// read of its own.
	catchMu  sync.Mutex
	requests atomic.Uint64
	served   uint64 // guarded by catchMu

	mu      sync.RWMutex
	next    uint64 // revisions [0, next) are indexed: the head position
	head    eventstore.Hash
	streams map[string][]uint64 // positions, by version-1
	ids     map[uuid.UUID]uint64
	names   map[string]uint64 // IDs that are not canonical UUIDs
}

func newIndex() *index {
	return &index{streams: map[string][]uint64{}, ids: map[uuid.UUID]uint64{}, names: map[string]uint64{}}
}

// entry is what the index keeps of one event.
type entry struct {
	position uint64
	stream   string
	id       string
	hash     eventstore.Hash
}

// add indexes events read from the log stream, in revision order starting
// at next. The caller holds catchMu.
func (x *index) add(entries []entry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, e := range entries {
		if u, ok := canonicalUUID(e.id); ok {
			x.ids[u] = e.position
		} else {
			x.names[e.id] = e.position
		}
		x.streams[e.stream] = append(x.streams[e.stream], e.position)
		x.next, x.head = e.position, e.hash
	}
}

// lookup returns the position of an event ID.
func (x *index) lookup(id string) (uint64, bool) {
	var p uint64
	var ok bool
	if u, canonical := canonicalUUID(id); canonical {
		p, ok = x.ids[u]
	} else {
		p, ok = x.names[id]
	}
	return p, ok
}

// version returns a stream's version. The caller holds mu.
func (x *index) version(stream string) uint64 { return uint64(len(x.streams[stream])) }
