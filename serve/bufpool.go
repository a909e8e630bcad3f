package serve

import (
	"math/bits"
	"sync"
)

// fetchBuffers recycles the buffers ranges of parts are fetched into. A trace read from S3
// fetches ~6 MB of each of its parts (RangeGap) and drops them when the part is decoded;
// allocated afresh, every byte was zeroed by the runtime first and then overwritten by the
// read (7 % of a first open's CPU from MinIO). Buffers come in power-of-two classes from 64 KiB
// to 64 MiB; a larger request is allocated and not kept.
type fetchBuffers struct{ classes [bufClasses]sync.Pool }

const (
	minBufShift = 16
	bufClasses  = 11 // 64 KiB … 64 MiB
)

// bufClass is the class of buffers able to hold n bytes, or -1 when n is above them all.
func bufClass(n int) int {
	c := max(bits.Len(uint(n-1))-minBufShift, 0)
	if n <= 0 || c >= bufClasses {
		return -1
	}
	return c
}

// get returns a buffer of length n whose bytes are not zeroed (they are about to be read into).
func (p *fetchBuffers) get(n int) []byte {
	c := bufClass(n)
	if c < 0 {
		return make([]byte, n)
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<(c+minBufShift))
}

// put gives back a buffer get returned, which nothing may use afterwards.
func (p *fetchBuffers) put(b []byte) {
	c := bufClass(cap(b))
	if c < 0 || cap(b) != 1<<(c+minBufShift) {
		return // not one of ours
	}
	b = b[:0]
	p.classes[c].Put(&b)
}
