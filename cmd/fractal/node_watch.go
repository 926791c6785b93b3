package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/notes"
)

func init() {
	f := nodeWatchCmd.Flags()
	f.Uint64("start", 0, "send the events of blocks from this height on (default: from the next block)")
	f.Bool("receipts", false, "a line per committed transaction's receipt")
	f.StringArray("pattern", nil, "a line per note created or spent whose state key matches this constraint pattern (repeatable)")
	f.Bool("live", false, "also refused transactions and encrypted batch changes, as they happen")
	f.Uint64("until", 0, "stop after the block at this height (default: until SIGINT)")
	nodeFlag(nodeWatchCmd)
	nodeCmd.AddCommand(nodeWatchCmd)
}

var errWatchDone = errors.New("done")

var nodeWatchCmd = &cobra.Command{
	Use:   "watch [--start H] [--receipts] [--pattern P]... [--live] [--until H] [--node URL]",
	Short: "Print the node's events as they come: blocks, receipts, notes created and spent",
	Long: `watch follows the event stream of the node running on --home (or --node URL):
for every block, in order, a line per committed transaction's receipt (with
--receipts), a line per note created or spent matching a --pattern, then a line
for the block itself. With --start it begins with blocks already sealed; with
--until it stops after the block at that height, else it runs until SIGINT.
--live adds refused transactions and encrypted batch changes as they happen
(they are not replayed). With --json each event is one line of the API's JSON.
A stream the node ends (too far behind, or the node stopping) fails with a
message saying where to resume.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		n, err := nodeOf(cmd)
		if err != nil {
			return err
		}
		if n == nil {
			return fmt.Errorf("%w (%s): start one with fractal --home %s node, or give --node URL", errNoNode, flagHome, flagHome)
		}
		req := &v1.WatchRequest{}
		req.Receipts, _ = cmd.Flags().GetBool("receipts")
		req.LiveOnlyEvents, _ = cmd.Flags().GetBool("live")
		req.NotePatterns, _ = cmd.Flags().GetStringArray("pattern")
		for _, p := range req.NotePatterns {
			if _, err := notes.ParsePattern(p); err != nil {
				return fmt.Errorf("--pattern %q: %w", p, err)
			}
		}
		if cmd.Flags().Changed("start") {
			h, _ := cmd.Flags().GetUint64("start")
			req.StartHeight = &h
		}
		until, _ := cmd.Flags().GetUint64("until")
		if req.StartHeight != nil && cmd.Flags().Changed("until") && until < *req.StartHeight {
			return fmt.Errorf("--until %d is below --start %d: no block to watch", until, *req.StartHeight)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = n.Watch(ctx, req, func(ev *v1.WatchResponse) error {
			// A long-running verb prints as it goes, not at its end.
			if flagJSON {
				b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stdout, "%s\n", b)
			} else {
				fmt.Fprintln(os.Stdout, eventLine(ev))
			}
			if b := ev.GetBlock(); b != nil && cmd.Flags().Changed("until") && b.Height >= until {
				return errWatchDone
			}
			return nil
		})
		if errors.Is(err, errWatchDone) || ctx.Err() != nil {
			return nil
		}
		return err
	}),
}

// eventLine is one event for people.
func eventLine(ev *v1.WatchResponse) string {
	switch e := ev.Event.(type) {
	case *v1.WatchResponse_Block:
		return fmt.Sprintf("block %d %s (%d transactions)", e.Block.Height, e.Block.Hash, e.Block.TxCount)
	case *v1.WatchResponse_Receipt:
		return fmt.Sprintf("  receipt %s %s, gas %d", e.Receipt.TxId, statusWord(e.Receipt), e.Receipt.GetGas().GetTotal())
	case *v1.WatchResponse_NoteCreated:
		return fmt.Sprintf("  created %s %s", e.NoteCreated.Ref.Id[:16], e.NoteCreated.Ref.StateKey)
	case *v1.WatchResponse_NoteSpent:
		return fmt.Sprintf("  spent   %s %s", e.NoteSpent.Ref.Id[:16], e.NoteSpent.Ref.StateKey)
	case *v1.WatchResponse_Refused:
		return fmt.Sprintf("refused %s in %s: %s", e.Refused.TxId, e.Refused.Phase, e.Refused.Reason)
	case *v1.WatchResponse_EncryptedBatch:
		return fmt.Sprintf("encrypted batch %d %s (%d of %d shares)", e.EncryptedBatch.Number, e.EncryptedBatch.State, len(e.EncryptedBatch.Shares), e.EncryptedBatch.Needed)
	}
	return fmt.Sprintf("event at height %d of a kind this program does not know", ev.Height)
}

func statusWord(rc *v1.Receipt) string {
	if rc.Status == v1.ReceiptStatus_RECEIPT_STATUS_ACCEPTED {
		return "accepted"
	}
	return "refused"
}
