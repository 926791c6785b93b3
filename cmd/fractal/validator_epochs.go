package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/tfhe/dkg"
)

func init() {
	validatorEpochsCmd.Flags().Uint64("epoch", 0, "with --transcript-out: the epoch whose transcript to write")
	validatorEpochsCmd.Flags().String("transcript-out", "", "write that epoch's DKG transcript, rebuilt from the envelopes the chain recorded (must not exist)")
	validatorCmd.AddCommand(validatorEpochsCmd)
}

// dkgAttemptJSON is one DKG attempt's record for people and scripts.
type dkgAttemptJSON struct {
	Epoch      uint64      `json:"epoch"`
	Attempt    uint32      `json:"attempt"`
	Height     uint64      `json:"decided_at"`
	Start      uint64      `json:"start,omitempty"`
	Key        string      `json:"key,omitempty"`
	Transcript string      `json:"transcript,omitempty"`
	Qual       []int       `json:"qualified_dealers,omitempty"`
	Holders    []int       `json:"holders,omitempty"`
	Faults     []dkg.Fault `json:"faults,omitempty"`
	Failure    string      `json:"failure,omitempty"`
}

var validatorEpochsCmd = &cobra.Command{
	Use:   "epochs [--epoch E --transcript-out FILE]",
	Short: "List the threshold key's epochs a validator home recorded",
	Long: `epochs reads the validator home given by --home (stopped: the running
validator holds its store) and prints the epoch rules and the key in force,
then every DKG attempt the chain decided: the epoch, the attempt, the
height that decided it, and either the key made (its ID, the height from
which it is in force, the transcript hash, the qualified dealers, the
keyholders holding a share, each keyholder left out and why) or why it
failed. With --epoch E --transcript-out FILE it writes that epoch's
transcript, rebuilt from the DKG envelopes the chain recorded; anyone checks
it with "fractal tfhe check-transcript FILE --chain".`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		return withInstance(func(in *fractal.Instance) error {
			st, err := in.Epochs()
			if err != nil {
				return err
			}
			if st == nil {
				return fmt.Errorf("%s has no threshold-key epochs (fractal devnet --encrypted --epoch-blocks N makes them)", flagHome)
			}
			records, err := in.EpochRecords()
			if err != nil {
				return err
			}
			out, _ := cmd.Flags().GetString("transcript-out")
			e, _ := cmd.Flags().GetUint64("epoch")
			if (out == "") != (e == 0) {
				return errors.New("validator epochs: --epoch E and --transcript-out FILE go together: the epoch whose transcript to write, and where")
			}
			if out != "" {
				return writeEpochTranscript(cmd, in, records, e, out)
			}
			list := make([]dkgAttemptJSON, 0, len(records))
			for _, r := range records {
				j := dkgAttemptJSON{Epoch: r.Epoch, Attempt: r.Attempt, Height: r.Height, Failure: r.Failure}
				if r.Key != nil {
					id := r.Key.ID()
					j.Start, j.Key, j.Transcript = r.Start, hex.EncodeToString(id[:]), hex.EncodeToString(r.Transcript[:])
					j.Qual, j.Holders, j.Faults = r.Qual, r.Holders, r.Faults
				}
				list = append(list, j)
			}
			v := map[string]any{"epoch_blocks": st.Rules.Blocks, "dkg_window": st.Rules.Window, "epoch": st.Epoch,
				"height": st.Height, "next_start": st.Boundary, "next_attempt": st.Session.Attempt, "attempts": list}
			return emit(cmd, v, func(w io.Writer) {
				fmt.Fprintf(w, "after height %d: epoch %d in force (epoch_blocks %d, dkg_window %d); epoch %d may start at %d (attempt %d)\n",
					st.Height, st.Epoch, st.Rules.Blocks, st.Rules.Window, st.Epoch+1, st.Boundary, st.Session.Attempt)
				for _, j := range list {
					if j.Key == "" {
						fmt.Fprintf(w, "epoch %d attempt %d, decided at %d: failed: %s\n", j.Epoch, j.Attempt, j.Height, j.Failure)
						continue
					}
					fmt.Fprintf(w, "epoch %d attempt %d, decided at %d: key %s from height %d, transcript %s\n  dealers %s; holders %s\n",
						j.Epoch, j.Attempt, j.Height, j.Key, j.Start, j.Transcript, dkg.KeyholderList(j.Qual), dkg.KeyholderList(j.Holders))
					for _, f := range j.Faults {
						fmt.Fprintf(w, "  keyholder %d: %s\n", f.Keyholder, f.Reason)
					}
				}
			})
		})
	}),
}

// writeEpochTranscript writes the transcript of epoch e's successful DKG.
func writeEpochTranscript(cmd *cobra.Command, in *fractal.Instance, records []*fractal.EpochRecord, e uint64, out string) error {
	for _, r := range records {
		if r.Epoch != e || r.Key == nil {
			continue
		}
		t, err := in.EpochTranscript(r)
		if err != nil {
			return err
		}
		if err := writeNew(out, t.Encode(), 0o644); err != nil {
			return err
		}
		return emit(cmd, map[string]string{"transcript": out, "hash": hex.EncodeToString(r.Transcript[:])}, func(w io.Writer) {
			fmt.Fprintf(w, "epoch %d transcript %x written to %s\n", e, r.Transcript, out)
		})
	}
	return fmt.Errorf("no DKG made epoch %d's key on this chain (give --epoch E of a key made)", e)
}
