package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// The encrypted mempool's verbs through a node. The node seals on its own:
// a payload is queued, shares are stored, and the batch opens at the node's
// next seal once k are in.

func remoteSubmitEncrypted(ctx context.Context, cmd *cobra.Command, tx *phases.Tx, n *nodeRef) error {
	pk, instance, err := n.ThresholdKey(ctx)
	if err != nil {
		return err
	}
	p, err := fractal.EncryptTx(pk, instance, tx)
	if err != nil {
		return err
	}
	pid, err := n.SubmitEncrypted(ctx, p.Encode())
	if err != nil {
		return err
	}
	txid := tx.ID()
	out := map[string]string{"payload": hex.EncodeToString(pid[:]), "tx": hex.EncodeToString(txid[:]), "status": "queued"}
	return emit(cmd, out, func(w io.Writer) {
		fmt.Fprintf(w, "queued encrypted payload %x (transaction %x)\n", pid, txid)
	})
}

func remotePending(ctx context.Context, cmd *cobra.Command, _ []string, n *nodeRef) error {
	st, _, queued, err := n.Pending(ctx, false)
	if err != nil {
		return err
	}
	keyholders := 0
	if st != nil {
		pk, _, err := n.ThresholdKey(ctx)
		if err != nil {
			return err
		}
		keyholders = pk.N
	}
	return emitPending(cmd, st, keyholders, queued)
}

func remoteShare(ctx context.Context, cmd *cobra.Command, _ []string, n *nodeRef) error {
	sk, err := keyShareFlag(cmd)
	if err != nil {
		return err
	}
	st, payloads, _, err := n.Pending(ctx, true)
	if err != nil {
		return err
	}
	if st == nil {
		return errors.New("no encrypted batch is waiting for shares")
	}
	if sk.PK.ID() != st.Batch.Key {
		return errors.New("key share is for another threshold key than the attached one")
	}
	// The shares are made here, with the key share that never leaves this
	// machine; the node checks each against the batch it signed.
	sb, err := tfhe.PartDecBatch(ctx, sk, payloads)
	if err != nil {
		return fmt.Errorf("make shares for encrypted batch %d: %w", st.Batch.Number, err)
	}
	if out, _ := cmd.Flags().GetString("out"); out != "" {
		return writeShares(cmd, sb, out)
	}
	return submitSharesThrough(ctx, cmd, n, sb.Encode())
}

func remoteSubmitShare(ctx context.Context, cmd *cobra.Command, args []string, n *nodeRef) error {
	raw, err := inputfile.Read(args[0], maxTfheFile)
	if err != nil {
		return err
	}
	return submitSharesThrough(ctx, cmd, n, raw)
}

// submitSharesThrough stores shares on the node and prints the batch's
// state; the node opens it at its next seal once k shares are in.
func submitSharesThrough(ctx context.Context, cmd *cobra.Command, n *nodeRef, raw []byte) error {
	st, err := n.SubmitShares(ctx, raw)
	if err != nil {
		return err
	}
	return emitBatch(cmd, st)
}

func remoteOutcome(ctx context.Context, cmd *cobra.Command, args []string, n *nodeRef) error {
	id, err := parseHash(args[0])
	if err != nil {
		return fmt.Errorf("payload ID: %w", err)
	}
	o, m, err := n.EncryptedOutcome(ctx, id)
	if err != nil {
		return err
	}
	if o == nil {
		where := "queued"
		if m.State == v1.EncryptedPayloadState_ENCRYPTED_PAYLOAD_STATE_IN_BATCH {
			where = fmt.Sprintf("in encrypted batch %d, slot %d", m.Batch, m.Slot)
		}
		return fmt.Errorf("payload %x has not been opened yet (%s)", id, where)
	}
	return emitEncryptedOutcome(cmd, id, o)
}
