package main

import (
	"bytes"
	"testing"
)

func TestTally(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, []uint64{1, 0, 1, 1, 0, 1, 1}); err != nil {
		t.Fatal(err)
	}
	want := `key made by DKG among 5 keyholders; any 3 decrypt
7 encrypted ballots
with 2 shares: tfhe: findec: 2 shares, need 3
with 3 shares: 5 yes, 2 no
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}
