package serve

import (
	"math/bits"
	"sync"
)

// fetchBuffers recycles the buffers ranges of parts are fetched into from a remote store (local
// reads are page-sized and are not recycled: recycled, a new server's first trace took 520–600
// CPU-ms against 456–550, its pools empty and buffers rounded up to a class). A trace read from S3
// fetches ~6 MB of each of its parts (RangeGap) and drops them when the part is decoded;
// allocated afresh, every byte was zeroed by the runtime and then overwritten by the read. Sizes
// above 128 KiB, up to 64 MiB, come in four classes an octave (a buffer is at most 25 % larger
// than asked for); smaller and larger ones are allocated as asked and not kept.
type fetchBuffers struct{ classes [bufClasses]sync.Pool }

// remoteBuffers is shared by every Reader of the process: pools of Readers since dropped (a
// test's, or a server's before a restart of its reader) would hold buffers no one reuses until
// the garbage collector empties them, and a new Reader would start empty.
var remoteBuffers fetchBuffers

const (
	minPooledShift = 17 // pooled: (128 KiB, 64 MiB]
	maxPooledShift = 26
	bufClasses     = 4 * (maxPooledShift - minPooledShift)
)

// bufClass is the class of buffers for n bytes and their size, or -1 for sizes not pooled.
func bufClass(n int) (class, size int) {
	if n <= 1<<minPooledShift || n > 1<<maxPooledShift {
		return -1, n
	}
	k := bits.Len(uint(n-1)) - 1 // 2^k < n ≤ 2^(k+1)
	step := 1 << (k - 2)
	q := (n + step - 1) / step // 5…8 quarters of 2^k
	return 4*(k-minPooledShift) + q - 5, q * step
}

// get returns a buffer of length n, with whatever bytes it held (they are about to be read into).
func (p *fetchBuffers) get(n int) []byte {
	c, size := bufClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, size)
}

// put gives back a buffer get returned, which nothing may use afterwards.
func (p *fetchBuffers) put(b []byte) {
	c, size := bufClass(cap(b))
	if c < 0 || size != cap(b) {
		return // not a class's size: not one of ours
	}
	b = b[:0]
	p.classes[c].Put(&b)
}
