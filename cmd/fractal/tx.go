package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
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
	txSubmitCmd.Flags().Bool("no-seal", false, "only queue the transaction; seal later with fractal block seal")
	txCmd.AddCommand(txSubmitCmd)
	blockCmd.AddCommand(blockSealCmd)
	rootCmd.AddCommand(txCmd, receiptCmd)
}

var txCmd = &cobra.Command{
	Use:   "tx",
	Short: "Submit transactions",
	Long:  `tx submits transactions to the instance (see fractal tx submit).`,
}

var txSubmitCmd = &cobra.Command{
	Use:   "submit TX.json [--key KEYFILE...]",
	Short: "Sign a transaction, queue it, seal a block and print its receipt",
	Long: `submit reads a transaction in its JSON form (docs/formats/transactions.md;
"lookup_file" and "calculation_file" are relative to TX.json's folder), signs
it with every --key (when the JSON lists no signers, the keys' public keys
become the signers, in order), and queues it. Without --key the file must be
signed by every signer already (fractal tx sign). The instance refuses,
changing nothing, a transaction that is malformed, unsigned, wrongly signed
or already executed.

Unless --no-seal is given it then seals a block with everything queued (more
blocks when more than a block's worth was queued before it) and prints this
transaction's receipt. A transaction refused in lookup, calculation or
validity is printed with the phase, predicate and reason, and the command
fails; nothing of it is stored.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		tx, err := readSignedTx(cmd, args[0])
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

// emitQueued prints that transaction id is queued.
func emitQueued(cmd *cobra.Command, id [32]byte) error {
	out := map[string]string{"tx": hex.EncodeToString(id[:]), "status": "queued"}
	return emit(cmd, out, func(w io.Writer) { fmt.Fprintf(w, "queued %x\n", id) })
}

// emitOutcome prints a transaction's receipt and fails when it was
// refused.
func emitOutcome(cmd *cobra.Command, v receiptView) error {
	if err := emitReceipt(cmd, v); err != nil {
		return err
	}
	if err := refused(v.rc); err != nil {
		return fmt.Errorf("transaction %x %w", v.rc.TxID[:8], err)
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

// readSignedTx reads tx submit's transaction file and signs it with its
// --key files.
func readSignedTx(cmd *cobra.Command, path string) (*phases.Tx, error) {
	tx, err := readTxFile(path)
	if err != nil {
		return nil, err
	}
	keyFiles, _ := cmd.Flags().GetStringArray("key")
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

var blockSealCmd = &cobra.Command{
	Use:   "seal",
	Short: "Seal a block from the queued transactions",
	Long: `seal takes the queued transactions in arrival order (up to the configured
block size), runs them through the four phases and commits the accepted ones
as a new signed block. It prints the block and every transaction's status.
Refused transactions leave the queue and are not stored. With nothing queued
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
digits): its status, the gas of each phase, the notes it spent and created,
and its log. Refused transactions are not stored and are reported unknown.`,
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
			return emitReceipt(cmd, viewReceipt(in, rc, nil))
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
	if b != nil && rc.Status == phases.Accepted {
		fmt.Fprintf(w, "  in block %d %x\n", b.Height, b.Hash())
	}
	fmt.Fprintf(w, "  gas lookup %d, calculation %d, validity %d\n", rc.Gas.Lookup, rc.Gas.Calculation, rc.Gas.Validity)
	for _, r := range rc.Inputs {
		fmt.Fprintf(w, "  %s %x %s\n", spent, r.ID[:8], r.Key)
	}
	for _, r := range rc.Outputs {
		fmt.Fprintf(w, "  %s %x %s\n", created, r.ID[:8], r.Key)
	}
	for _, l := range rc.Log {
		fmt.Fprintf(w, "  log: %s\n", l)
	}
}
