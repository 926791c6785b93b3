// Command tally is a private vote count: voters encrypt 0 or 1 to a 3-of-5
// threshold key made by distributed key generation, anyone adds the encrypted
// ballots with Eval, and three keyholders decrypt only the total. No single
// ballot is ever decrypted, and two keyholders cannot decrypt anything.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/fractalvm/fractal/tfhe"
)

func main() {
	if err := run(os.Stdout, []uint64{1, 0, 1, 1, 0, 1, 1}); err != nil {
		fmt.Fprintln(os.Stderr, "tally:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, votes []uint64) error {
	pk, keyholders, err := tfhe.Setup(context.Background(), 5, 3)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "key made by DKG among %d keyholders; any %d decrypt\n", pk.N, pk.K)

	var ballots []tfhe.Ciphertext
	for _, v := range votes {
		b, err := tfhe.Encrypt(pk, v)
		if err != nil {
			return err
		}
		ballots = append(ballots, b)
	}
	fmt.Fprintf(w, "%d encrypted ballots\n", len(ballots))

	total, err := tfhe.Eval(pk, tfhe.Circuit{Op: "sum"}, ballots...)
	if err != nil {
		return err
	}

	// Two keyholders are not enough.
	var shares []*tfhe.Share
	for _, kh := range keyholders[:2] {
		s, err := tfhe.PartDec(kh, total)
		if err != nil {
			return err
		}
		shares = append(shares, s)
	}
	if _, err := tfhe.DecryptCounter(pk, total, shares); err == nil {
		return fmt.Errorf("two keyholders decrypted the total")
	} else {
		fmt.Fprintf(w, "with 2 shares: %v\n", err)
	}

	// A third one is.
	s, err := tfhe.PartDec(keyholders[4], total)
	if err != nil {
		return err
	}
	yes, err := tfhe.DecryptCounter(pk, total, append(shares, s))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "with 3 shares: %d yes, %d no\n", yes, uint64(len(votes))-yes)
	return nil
}
