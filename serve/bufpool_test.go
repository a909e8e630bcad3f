package serve

import "testing"

func TestFetchBuffers(t *testing.T) {
	var p fetchBuffers
	for _, n := range []int{1, 4096, 64 << 10, 64<<10 + 1, 5 << 20, 64 << 20} {
		b := p.get(n)
		if len(b) != n || cap(b)&(cap(b)-1) != 0 || cap(b) < 64<<10 {
			t.Fatalf("get(%d): len %d cap %d", n, len(b), cap(b))
		}
		p.put(b)
	}
	big := p.get(64<<20 + 1) // above every class: allocated, not kept
	if len(big) != 64<<20+1 || bufClass(cap(big)) != -1 {
		t.Fatalf("get(64 MiB + 1): len %d cap %d", len(big), cap(big))
	}
	p.put(big)
	p.put(make([]byte, 100<<10)) // not a class's size: dropped
	for range 3 {
		if b := p.get(100 << 10); cap(b) != 128<<10 {
			t.Fatalf("get(100 KiB): cap %d, want 128 KiB", cap(b))
		}
	}
	if bufClass(0) != -1 || bufClass(-1) != -1 || bufClass(1) != 0 || bufClass(64<<10+1) != 1 {
		t.Fatal("bufClass")
	}
}
