package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/shielded/wallet"
)

func init() {
	for _, c := range []*cobra.Command{shieldedSyncCmd, shieldedShieldCmd, shieldedTransferCmd, shieldedUnshieldCmd} {
		nodeFlag(c)
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
	if n == nil {
		return withInstance(func(in *fractal.Instance) error { return f(in, in) })
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), remoteTimeout)
	defer cancel()
	in, err := n.WalletInstance(ctx)
	if err != nil {
		return err
	}
	return f(in, nodeExports{ctx, n})
}
