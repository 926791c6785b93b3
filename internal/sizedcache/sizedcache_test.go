package sizedcache

import "testing"

// TestCacheBoundedBySize: values are kept while their sizes fit; one that
// does not fit empties the cache first; one larger than the bound is not
// kept at all; replacing a value counts its new size only.
func TestCacheBoundedBySize(t *testing.T) {
	c := New[string, int](100)
	c.Put("a", 1, 60)
	c.Put("b", 2, 40)
	if v, ok := c.Get("a"); !ok || v != 1 || c.Size() != 100 {
		t.Fatalf("a: %v %v, size %d", v, ok, c.Size())
	}
	c.Put("b", 3, 30)
	if v, _ := c.Get("b"); v != 3 || c.Size() != 90 {
		t.Fatalf("b replaced: %v, size %d", v, c.Size())
	}
	c.Put("c", 4, 20) // 110 > 100: everything else is forgotten
	if _, ok := c.Get("a"); ok || c.Size() != 20 {
		t.Fatalf("after overflow: a kept %v, size %d", ok, c.Size())
	}
	c.Put("huge", 5, 101)
	if _, ok := c.Get("huge"); ok || c.Size() != 20 {
		t.Fatalf("oversized value kept %v, size %d", ok, c.Size())
	}
}
