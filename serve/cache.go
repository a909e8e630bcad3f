package serve

import (
	"container/list"
	"sync"
)

// lru is a small cost-bounded LRU cache. A zero or negative budget caches nothing.
type lru[V any] struct {
	mu     sync.Mutex
	budget int64
	cost   int64
	ll     *list.List
	m      map[string]*list.Element
}

type lruEntry[V any] struct {
	key  string
	v    V
	cost int64
}

func newLRU[V any](budget int64) *lru[V] {
	return &lru[V]{budget: budget, ll: list.New(), m: map[string]*list.Element{}}
}

func (c *lru[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[V]).v, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) put(k string, v V, cost int64) {
	if c.budget <= 0 || cost > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok {
		c.cost -= e.Value.(*lruEntry[V]).cost
		c.ll.Remove(e)
	}
	c.m[k] = c.ll.PushFront(&lruEntry[V]{k, v, cost})
	c.cost += cost
	for c.cost > c.budget {
		e := c.ll.Back()
		ent := e.Value.(*lruEntry[V])
		c.ll.Remove(e)
		delete(c.m, ent.key)
		c.cost -= ent.cost
	}
}

func (c *lru[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
