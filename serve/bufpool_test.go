package serve

import "testing"

func TestFetchBuffers(t *testing.T) {
	// Pooled sizes: a class's buffers hold what it is for, at most a quarter larger, and a
	// class's size is in the class (so a buffer put back is found again).
	lastClass := -1
	for n := 128<<10 + 1; n <= 64<<20; n += 1 + n/97 {
		c, size := bufClass(n)
		if c < lastClass || c >= bufClasses || size < n || 4*size > 5*n {
			t.Fatalf("bufClass(%d) = %d, %d after class %d", n, c, size, lastClass)
		}
		if c2, s2 := bufClass(size); c2 != c || s2 != size {
			t.Fatalf("bufClass(%d) = %d, %d; of its size %d, %d", n, c, size, c2, s2)
		}
		lastClass = c
	}
	if lastClass != bufClasses-1 {
		t.Fatalf("last class %d of %d", lastClass, bufClasses)
	}
	for _, n := range []int{0, 1, 128 << 10, 64<<20 + 1} {
		if c, size := bufClass(n); c != -1 || size != n {
			t.Fatalf("bufClass(%d) = %d, %d: want not pooled", n, c, size)
		}
	}

	var p fetchBuffers
	for _, n := range []int{1, 4096, 200 << 10, 5<<20 + 3, 64<<20 + 1} {
		b := p.get(n)
		if _, size := bufClass(n); len(b) != n || cap(b) != size {
			t.Fatalf("get(%d): len %d cap %d, want cap %d", n, len(b), cap(b), size)
		}
		p.put(b)
	}
	p.put(make([]byte, 200<<10)) // not a class's size: dropped
	if b := p.get(200 << 10); cap(b) != 224<<10 {
		t.Fatalf("get(200 KiB): cap %d, want 224 KiB", cap(b))
	}
}
