package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/shielded/wallet"
)

func init() {
	for _, c := range []*cobra.Command{shieldedSyncCmd, shieldedShieldCmd, shieldedTransferCmd, shieldedUnshieldCmd} {
		nodeFlag(c)
		c.Flags().String("trust", "", "through a validator set's node: the trust entry file naming the instance and its validator set (a devnet's trust.json)")
	}
}

// withShielded runs f on what the shielded verbs send through: the node cmd
// talks to (its client as a wallet.Instance, reading compact blocks), or the
// instance in --home when none; ex lists its outbox for the receipt.
func withShielded(cmd *cobra.Command, f func(in wallet.Instance, ex exportLister) error) error {
	n, err := nodeOf(cmd)
	if err != nil {
		return err
	}
	trustFile, _ := cmd.Flags().GetString("trust")
	if n == nil {
		if trustFile != "" {
			return errors.New("--trust checks what a node serves: give it with --node URL (a validator's own home needs none)")
		}
		return withInstance(func(in *fractal.Instance) error { return f(in, in) })
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), remoteTimeout)
	defer cancel()
	var in wallet.Instance
	if trustFile == "" {
		in, err = n.WalletInstance(ctx)
	} else {
		var p fractal.Peer
		if p, err = readTrustEntry(trustFile); err != nil {
			return err
		}
		if p.Validators == nil {
			return fmt.Errorf("--trust %s names executor keys, not a validator set: a solo instance's blocks are checked by their signatures", trustFile)
		}
		in, err = n.TrustedWalletInstance(ctx, p.ID, p.Genesis, p.Validators)
	}
	if err != nil {
		return err
	}
	return f(in, nodeExports{ctx, n})
}
