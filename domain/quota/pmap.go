package quota

import "iter"

// shardCount is the number of shards of a pmap. A ledger may hold a hundred
// thousand charges; with 256 shards a change copies one shard of a few
// hundred entries and a 2 KiB array of shard pointers, instead of the whole
// map.
const shardCount = 256

// pmap is a persistent string-keyed map: with returns a new map and leaves the
// receiver unchanged, sharing every shard it did not touch. It lets Evolve
// stay pure (earlier Ledger values remain valid and safe to read from other
// goroutines) without copying the whole ledger on every event. The zero value
// is an empty map.
type pmap[V any] struct {
	shards *[shardCount]map[string]V
	n      int
}

// shardOf hashes a key with FNV-1a; the hash never leaves the process.
func shardOf(k string) int {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return int(h % shardCount)
}

func (m pmap[V]) get(k string) (V, bool) {
	if m.shards == nil {
		var zero V
		return zero, false
	}
	v, ok := m.shards[shardOf(k)][k]
	return v, ok
}

func (m pmap[V]) len() int { return m.n }

// with returns a map in which k is bound to v.
func (m pmap[V]) with(k string, v V) pmap[V] {
	var shards [shardCount]map[string]V
	if m.shards != nil {
		shards = *m.shards
	}
	i := shardOf(k)
	old := shards[i]
	next := make(map[string]V, len(old)+1)
	for kk, vv := range old {
		next[kk] = vv
	}
	_, existed := old[k]
	next[k] = v
	shards[i] = next
	n := m.n
	if !existed {
		n++
	}
	return pmap[V]{shards: &shards, n: n}
}

// without returns a map in which k is unbound. An empty result is the zero
// pmap, so that equal contents compare equal with reflect.DeepEqual.
func (m pmap[V]) without(k string) pmap[V] {
	if _, ok := m.get(k); !ok {
		return m
	}
	if m.n == 1 {
		return pmap[V]{}
	}
	shards := *m.shards
	i := shardOf(k)
	next := make(map[string]V, len(shards[i])-1)
	for kk, vv := range shards[i] {
		if kk != k {
			next[kk] = vv
		}
	}
	if len(next) == 0 {
		next = nil
	}
	shards[i] = next
	return pmap[V]{shards: &shards, n: m.n - 1}
}

// all yields every entry in no particular order.
func (m pmap[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if m.shards == nil {
			return
		}
		for _, shard := range m.shards {
			for k, v := range shard {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}
