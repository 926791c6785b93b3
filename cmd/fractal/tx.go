package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

func init() {
	txSubmitCmd.Flags().StringArray("key", nil, "key file of a signer (repeat for each signer)")
	txSubmitCmd.Flags().Bool("no-seal", false, "only queue the transaction and print its ID (seal later with fractal block seal; a node seals it at its next block)")
	txSubmitCmd.Flags().String("gas", "", `gas limit: "auto" simulates the transaction and asks for the smallest sufficient limit plus 20% (decision 145); a number replaces the file's gas_limit`)
	txSimulateCmd.Flags().StringArray("key", nil, "key file of a signer (repeat for each signer)")
	txCmd.AddCommand(txSubmitCmd, txSimulateCmd)
	blockCmd.AddCommand(blockSealCmd)
	rootCmd.AddCommand(txCmd, receiptCmd)
}

var txCmd = &cobra.Command{
	Use:   "tx",
	Short: "Submit transactions",
	Long:  `tx submits transactions to the instance (see fractal tx submit).`,
}

var txSubmitCmd = &cobra.Command{
	Use:   "submit TX.json... [--key KEYFILE...] [--gas auto|N]",
	Short: "Sign a transaction, queue it, seal a block and print its receipt",
	Long: `submit reads a transaction in its JSON form (docs/formats/transactions.md;
"lookup_file" and "calculation_file" are relative to TX.json's folder), signs
it with every --key (when the JSON lists no signers, the keys' public keys
become the signers, in order), and queues it. Without --key the file must be
signed by every signer already (fractal tx sign). The instance refuses,
changing nothing, a transaction that is malformed, unsigned, wrongly signed
or already executed, and one whose fee does not pass admission.

--gas auto first simulates the transaction on the instance in --home (as
fractal tx simulate), or through a node (--node URL, or the node running on
--home) with its Simulate method, finds the smallest gas limit with which it
is still accepted (the gas used may not be enough: each validity predicate
gets a share of what calculation left) and asks for that plus 20%, at most
what admission allows (max_block_gas, what the fee note pays at its price,
and a node's simulation gas limit); a transaction the simulation refuses is
printed with the reason, and nothing is queued. --gas N sets the gas limit to
N. Either needs --key: the gas limit is part of the ID the signatures cover.

Unless --no-seal is given it then seals a block with everything queued (more
blocks when more than a block's worth was queued before it; through a node,
it waits for the node's own seal) and prints this transaction's receipt, with the fee it paid when it offered one. A
transaction refused in lookup, calculation or validity is printed with the
phase, predicate and reason, and the command fails; it is stored only when it
paid a fee (decision 140), and then only its fee moved.

Several files (at most 256) go to a node (--node URL, or the node running on
--home) in one call, admitted together in their order: each is read, signed
and given its gas limit as one file is, and each one's receipt (or its
refusal) is printed in order; the command fails when any was refused.
Without a node, submit one file at a time.`,
	Args: func(_ *cobra.Command, args []string) error {
		if len(args) < 1 || len(args) > maxSubmitFiles {
			return fmt.Errorf("tx submit: give 1 to %d transaction files (TX.json...), not %d", maxSubmitFiles, len(args))
		}
		return nil
	},
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 {
			return fmt.Errorf("%d transaction files: several are submitted through a node in one call (--node URL, or a node running on --home); without one, submit them one at a time", len(args))
		}
		tx, err := readSignedTx(cmd, args[0], localEstimate)
		if err != nil {
			return err
		}
		if encrypt, _ := cmd.Flags().GetBool("encrypt"); encrypt {
			return submitEncrypted(cmd, tx) // the encrypted mempool, tfhe_mempool.go
		}
		return withInstance(func(in *fractal.Instance) error {
			id, err := in.Submit(tx)
			if err != nil {
				return err
			}
			if noSeal, _ := cmd.Flags().GetBool("no-seal"); noSeal {
				return emitQueued(cmd, id)
			}
			rc, b, err := in.SealFor(cmd.Context(), id)
			if err != nil {
				return err
			}
			return emitOutcome(cmd, viewReceipt(in, rc, b))
		})
	}),
}

// maxSubmitFiles is the most files one tx submit takes: what one
// SubmitTransactions call carries.
const maxSubmitFiles = 256

// emitQueued prints that transaction id is queued.
func emitQueued(cmd *cobra.Command, id [32]byte) error {
	out := map[string]string{"tx": hex.EncodeToString(id[:]), "status": "queued"}
	return emit(cmd, out, func(w io.Writer) { fmt.Fprintf(w, "queued %x\n", id) })
}

// emitOutcome prints a transaction's receipt and fails when it was
// refused.
func emitOutcome(cmd *cobra.Command, v receiptView) error { return emitReceiptOr(cmd, v, "") }

// emitReceiptOr prints a receipt and fails when it was refused, adding
// note to the error.
func emitReceiptOr(cmd *cobra.Command, v receiptView, note string) error {
	if err := emitReceipt(cmd, v); err != nil {
		return err
	}
	if err := refused(v.rc); err != nil {
		return fmt.Errorf("transaction %x %w%s", v.rc.TxID[:8], err, note)
	}
	return nil
}

// readTxFile parses a transaction's JSON form from path; the code files it
// names are read from path's folder.
func readTxFile(path string) (*phases.Tx, error) {
	data, err := inputfile.Read(path, phases.MaxTxJSON)
	if err != nil {
		return nil, err
	}
	tx, err := phases.ParseJSON(bytes.NewReader(data), filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	// Messages name the code files rather than "lookup" and "calculation".
	var files struct {
		Lookup      *string `json:"lookup_file"`
		Calculation *string `json:"calculation_file"`
	}
	json.Unmarshal(data, &files) // parsed strictly above
	for chunk, file := range map[string]*string{"lookup": files.Lookup, "calculation": files.Calculation} {
		if file != nil {
			shown[chunk] = filepath.Base(*file)
		}
	}
	return tx, nil
}

// gasEstimator is what --gas auto asks for a gas limit: the instance in
// --home (localEstimate) or a node (its client's EstimateGas), the same
// search either way (fractal.Instance.EstimateGas).
type gasEstimator func(ctx context.Context, tx *phases.Tx) (*fractal.GasEstimate, error)

// localEstimate estimates on the instance in --home.
func localEstimate(ctx context.Context, tx *phases.Tx) (est *fractal.GasEstimate, err error) {
	err = withInstance(func(in *fractal.Instance) error {
		est, err = in.EstimateGas(ctx, tx, 0)
		return err
	})
	return est, err
}

// readSignedTx reads tx submit's transaction file, sets its gas limit as
// --gas says (asking estimate for "auto"), and signs it with its --key
// files.
func readSignedTx(cmd *cobra.Command, path string, estimate gasEstimator) (*phases.Tx, error) {
	tx, err := readTxFile(path)
	if err != nil {
		return nil, err
	}
	keyFiles, _ := cmd.Flags().GetStringArray("key")
	if err := setGas(cmd, tx, keyFiles, estimate); err != nil {
		return nil, err
	}
	return tx, signTx(tx, keyFiles)
}

// signTx signs tx with each key file, first making the keys the signers
// when the transaction names none. Without key files the transaction must
// be signed by all its signers already (fractal tx sign).
func signTx(tx *phases.Tx, keyFiles []string) error {
	if len(keyFiles) == 0 {
		if err := tx.VerifySignatures(); err != nil {
			return fmt.Errorf("no --key given, and the transaction is not fully signed: %w (sign it with --key, or with fractal tx sign)", err)
		}
		return nil
	}
	privs := make([]keys.PrivateKey, len(keyFiles))
	for i, kf := range keyFiles {
		k, err := keys.LoadKeyFile(kf)
		if err != nil {
			return err
		}
		privs[i] = k
	}
	return tx.SignAll(rand.Reader, privs)
}

// setGas applies submit's --gas to tx before it is signed with keyFiles,
// whose keys become its signers when the file lists none: a number is the
// gas limit; "auto" asks estimate and says what it chose on stderr.
func setGas(cmd *cobra.Command, tx *phases.Tx, keyFiles []string, estimate gasEstimator) error {
	gas, _ := cmd.Flags().GetString("gas")
	switch {
	case gas == "":
		return nil
	case len(keyFiles) == 0:
		return fmt.Errorf("--gas needs --key: the gas limit is part of the ID the signatures cover")
	case gas == "auto":
	default:
		n, err := strconv.ParseUint(gas, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf(`--gas %q: want "auto" or a gas limit of at least 1`, gas)
		}
		tx.GasLimit = n
		return nil
	}
	if len(tx.Signers) == 0 {
		for _, kf := range keyFiles {
			k, err := keys.LoadKeyFile(kf)
			if err != nil {
				return err
			}
			tx.Signers = append(tx.Signers, k.Public())
		}
	}
	est, err := estimate(cmd.Context(), tx)
	if err != nil {
		return err
	}
	if rc := est.Receipt; rc.Err() != nil {
		if err := emitReceipt(cmd, receiptView{rc: rc}); err != nil { // refused: no exports to list
			return err
		}
		return fmt.Errorf("--gas auto: the simulation %w; nothing was queued", refused(rc))
	}
	tx.GasLimit = est.Limit
	fmt.Fprintf(cmd.ErrOrStderr(), "gas limit %d: the simulation used %d; the smallest sufficient limit plus %d%%\n", est.Limit, est.Receipt.Gas.Total(), fractal.GasMargin)
	return nil
}

var txSimulateCmd = &cobra.Command{
	Use:   "simulate TX.json --key KEYFILE...",
	Short: "Run a transaction on the committed state without committing it, and print its receipt",
	Long: `simulate reads a transaction as fractal tx submit does, signs it with every
--key, and runs it as the next block would, against the committed state:
admission (form, size, gas limit, fee and minimum gas price, not executed
before), then lookup, calculation and validity. It prints the receipt: the gas
of each phase, the notes it would spend and create, the fee it would pay. It
writes nothing: no queue entry, no block, no note.

A transaction refused at admission (malformed, wrongly signed, a fee that
does not pass, executed before) fails with the reason in one line; one that
lookup, calculation or validity would refuse prints its refused receipt with
the phase and reason, and the command fails. The gas a run uses does not depend on its
gas limit unless it runs out, so the receipt's gas is what the committed
execution uses on the same state (decision 145); tx submit --gas auto adds a
margin to it.

Through a node (--node URL, or the node running on --home) it runs on the
node's committed state with the node's Simulate method and prints the same.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		tx, err := readSignedTx(cmd, args[0], localEstimate)
		if err != nil {
			return err
		}
		return withInstance(func(in *fractal.Instance) error {
			rc, _, err := in.Simulate(cmd.Context(), tx, false)
			if err != nil {
				return err
			}
			return emitSimulated(cmd, viewReceipt(in, rc, nil))
		})
	}),
}

// emitSimulated prints a simulation's receipt and fails when the
// transaction would be refused.
func emitSimulated(cmd *cobra.Command, v receiptView) error {
	if err := emitReceiptOr(cmd, v, " (simulated; nothing was written)"); err != nil {
		return err
	}
	// An accepted receipt reads like tx submit's: say on stderr that
	// nothing was queued, as the refused one's error does.
	fmt.Fprintln(cmd.ErrOrStderr(), "simulated; nothing was written")
	return nil
}

var blockSealCmd = &cobra.Command{
	Use:   "seal",
	Short: "Seal a block from the queued transactions",
	Long: `seal takes the queued transactions in arrival order (up to the configured
block size), runs them through the four phases and commits the accepted ones
as a new signed block. It prints the block and every transaction's status.
Refused transactions leave the queue and are not stored, unless they paid a
fee (decision 140). With nothing queued
it prints that and changes nothing.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		return withInstance(func(in *fractal.Instance) error {
			s, err := in.Seal(cmd.Context())
			if err != nil {
				return err
			}
			out := struct {
				Block     *blockJSON        `json:"block"`
				Receipts  []*phases.Receipt `json:"receipts"`
				Encrypted *encryptedJSON    `json:"encrypted,omitempty"` // tfhe_mempool.go
			}{Receipts: s.Receipts, Encrypted: toEncryptedJSON(s.Encrypted)}
			if s.Block != nil {
				j := toBlockJSON(s.Block)
				out.Block = &j
			}
			if out.Receipts == nil {
				out.Receipts = []*phases.Receipt{}
			}
			return emit(cmd, out, func(w io.Writer) {
				if len(s.Receipts) == 0 && s.Encrypted == nil {
					fmt.Fprintln(w, "nothing queued")
					return
				}
				printSealed(w, s) // tfhe_mempool.go
			})
		})
	}),
}

var receiptCmd = &cobra.Command{
	Use:   "receipt TXID",
	Short: "Show the receipt of a committed transaction",
	Long: `receipt prints the stored receipt of the committed transaction TXID (64 hex
digits): its status, the block that committed it, the gas of each phase, the
fee it paid, the notes it spent and created with their labels, and its log.
Refused transactions are not stored and are reported unknown, unless they
paid a fee (decision 140): their receipt is printed and the command fails.
Through a node (--node) it prints the same.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		id, err := parseHash(args[0])
		if err != nil {
			return fmt.Errorf("transaction ID: %w", err)
		}
		return withInstance(func(in *fractal.Instance) error {
			rc, err := in.Receipt(id)
			if err != nil {
				return err
			}
			_, h, err := in.TxState(id)
			if err != nil {
				return err
			}
			b, err := in.Block(h)
			if err != nil {
				return err
			}
			return emitOutcome(cmd, viewReceipt(in, rc, b)) // as remoteReceipt prints it
		})
	}),
}

// receiptLine is a one-line summary of a receipt.
func receiptLine(rc *phases.Receipt) string {
	if rc.Status == phases.Accepted {
		return fmt.Sprintf("%x accepted (%d spent, %d created, gas %d)", rc.TxID, len(rc.Inputs), len(rc.Outputs), rc.Gas.Total())
	}
	return fmt.Sprintf("%x %s", rc.TxID, shown.show(rc.Err().Error()))
}

// receiptView is a receipt as the verbs print it: the stored receipt, the
// exports an accepted transaction committed (they live in the outbox, not
// in the receipt) and, for a shielded verb, how long proving took.
type receiptView struct {
	rc      *phases.Receipt
	block   *chain.Block // the block that committed it, when known
	exports []exportJSON
	proving time.Duration
}

// exportLister lists an outbox: an instance, or a node through its API.
type exportLister interface {
	Exports(to *[32]byte) ([]*chain.ExportRecord, error)
}

// viewReceipt finds the exports of rc's transaction in in's outbox.
func viewReceipt(in exportLister, rc *phases.Receipt, b *chain.Block) receiptView {
	v := receiptView{rc: rc, block: b}
	if rc.Status != phases.Accepted {
		return v
	}
	recs, err := in.Exports(nil)
	if err != nil {
		return v // the receipt is still worth printing; exports lists the outbox
	}
	for _, r := range recs {
		if r.TxID == rc.TxID {
			v.exports = append(v.exports, toExportJSON(r))
		}
	}
	return v
}

// MarshalJSON is the receipt's JSON with "exports" and "proving_seconds"
// added when there are any.
func (v receiptView) MarshalJSON() ([]byte, error) {
	b, err := v.rc.MarshalJSON()
	if err != nil {
		return nil, err
	}
	extra, err := json.Marshal(struct {
		Exports []exportJSON `json:"exports,omitempty"`
		Proving float64      `json:"proving_seconds,omitempty"`
	}{v.exports, v.proving.Round(time.Millisecond).Seconds()})
	if err != nil || string(extra) == "{}" {
		return b, err
	}
	return append(append(b[:len(b)-1], ','), extra[1:]...), nil
}

func (v receiptView) print(w io.Writer) {
	printReceipt(w, v.rc, v.block)
	for _, e := range v.exports {
		fmt.Fprintf(w, "  exported %s to %s\n    %s\n", e.ID[:16], e.To[:16], e.Key)
	}
	if v.proving > 0 {
		fmt.Fprintf(w, "  proof made in %v\n", v.proving.Round(time.Millisecond))
	}
}

// printReceipt writes a receipt for people; b is the block that committed
// it, when known.
func printReceipt(w io.Writer, rc *phases.Receipt, b *chain.Block) {
	fmt.Fprintf(w, "transaction %x %s\n", rc.TxID, rc.Status)
	spent, created := "spent  ", "created"
	if rc.Status != phases.Accepted {
		fmt.Fprintf(w, "  refused in %s: %s\n", rc.Phase, shown.show(rc.Reason))
		spent, created = "input  ", "output " // named, never committed
	}
	if b != nil && rc.Committed() {
		fmt.Fprintf(w, "  in block %d %x\n", b.Height, b.Hash())
	}
	fmt.Fprintf(w, "  gas lookup %d, calculation %d, validity %d\n", rc.Gas.Lookup, rc.Gas.Calculation, rc.Gas.Validity)
	if f := rc.Fee; f != nil {
		fmt.Fprintf(w, "  fee %d (gas %d × price %d) from %s\n", f.Amount, f.Gas, f.Price, f.Note.Key)
		if f.Change != nil {
			fmt.Fprintf(w, "    change %x %s\n", f.Change.ID[:8], f.Change.Key)
		}
		fmt.Fprintf(w, "    paid   %x %s\n", f.Paid.ID[:8], f.Paid.Key)
	}
	for _, r := range rc.Inputs {
		fmt.Fprintf(w, "  %s %x %s\n", spent, r.ID[:8], r.Key)
	}
	labels := map[uint32]string{}
	for _, l := range rc.Labels {
		labels[l.Output] = " label " + l.Label
	}
	for i, r := range rc.Outputs {
		fmt.Fprintf(w, "  %s %x %s%s\n", created, r.ID[:8], r.Key, labels[uint32(i+1)])
	}
	for _, l := range rc.Log {
		fmt.Fprintf(w, "  log: %s\n", shown.show(l))
	}
}
