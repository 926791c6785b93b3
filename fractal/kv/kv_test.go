package kv_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/fractal/kv"
)

// scanAll renders every key and value under prefix, in scan order.
func scanAll(t *testing.T, r kv.Reader, prefix string) string {
	t.Helper()
	var out []string
	if err := r.Scan([]byte(prefix), func(k, v []byte) error {
		out = append(out, fmt.Sprintf("%s=%s", k, v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

func TestMap(t *testing.T) {
	m := kv.Map{}
	if _, ok, err := m.Get([]byte("a")); ok || err != nil {
		t.Fatalf("empty map: ok %v err %v", ok, err)
	}
	val := []byte("1")
	for _, k := range []string{"b2", "a", "b1", "c", "b"} {
		if err := m.Set([]byte(k), val); err != nil {
			t.Fatal(err)
		}
	}
	val[0] = '9' // the map kept its own copy
	got, ok, err := m.Get([]byte("b1"))
	if !ok || err != nil || string(got) != "1" {
		t.Fatalf("get b1: %q %v %v", got, ok, err)
	}
	got[0] = '8' // and handed out a copy
	if got, _, _ := m.Get([]byte("b1")); string(got) != "1" {
		t.Fatalf("a returned value changed the map: %q", got)
	}
	if s := scanAll(t, m, "b"); s != "b=1 b1=1 b2=1" {
		t.Fatalf("scan b: %s", s)
	}
	if err := m.Delete([]byte("b1")); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete([]byte("nothing")); err != nil {
		t.Fatalf("deleting an absent key: %v", err)
	}
	if s := scanAll(t, m, ""); s != "a=1 b=1 b2=1 c=1" {
		t.Fatalf("scan all: %s", s)
	}
	stop := errors.New("stop")
	n := 0
	if err := m.Scan(nil, func(k, v []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("a scan stopped by its callback: %v after %d keys", err, n)
	}
}
