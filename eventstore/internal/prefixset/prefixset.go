// Package prefixset remembers which sets of stream prefixes hold too many
// events for the SQL backends' ReadPage to find them through the stream
// index, so that it counts each such set once instead of on every page.
package prefixset

import (
	"strings"
	"sync"
)

// maxSets bounds the sets remembered; past it the memory starts afresh
// (forgotten sets are counted again, once each).
const maxSets = 1024

// Common is the sets found common. An append-only log never makes a common
// set rare again, so nothing is ever taken out but by the bound. The zero
// value is ready; it is safe for concurrent use.
type Common struct {
	mu   sync.Mutex
	sets map[string]bool
}

func key(prefixes []string) string { return strings.Join(prefixes, "\x00") }

// Has reports whether the set was found common.
func (c *Common) Has(prefixes []string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sets[key(prefixes)]
}

// Add records that the set is common.
func (c *Common) Add(prefixes []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sets == nil || len(c.sets) >= maxSets {
		c.sets = map[string]bool{}
	}
	c.sets[key(prefixes)] = true
}
