package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
)

// Signing apart from submitting (decision 116): each signer adds its
// signature to the transaction's file on its own machine; whoever holds
// the fully signed file submits it without a key.

func init() {
	txSignCmd.Flags().StringArray("key", nil, "key file of a signer (repeat to add several signatures)")
	txSignCmd.Flags().String("out", "", "the signed transaction file to write (must not exist)")
	txCmd.AddCommand(txSignCmd)
}

var txSignCmd = &cobra.Command{
	Use:   "sign TX.json --key KEYFILE --out SIGNED.json",
	Short: "Add a signature to a transaction file, keeping the others",
	Long: `sign reads a transaction in its JSON form (a file you wrote, with
"lookup_file" and "calculation_file" relative to its folder, or a file another
signer's fractal tx sign wrote), checks every signature it carries already,
adds the signature of each --key and writes the self-contained JSON form (code
inline, "id" and "signatures" filled in) to SIGNED.json, which must not exist.
It reads no instance and sends nothing anywhere.

Every signer signs the transaction ID, which covers the list of signers: a
transaction several parties sign must list them all in "signers" before the
first one signs. When the file lists no signers, the keys given become its
signers, in order. A key that is not among the signers, and a signature
already in the file that does not verify (the transaction changed after it
was signed), are refused. It prints the transaction ID and which signers
have signed and which have not; once all have, fractal tx submit SIGNED.json
(with no --key) queues it.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		out, _ := cmd.Flags().GetString("out")
		if out == "" {
			return fmt.Errorf("tx sign needs --out SIGNED.json")
		}
		keyFiles, _ := cmd.Flags().GetStringArray("key")
		if len(keyFiles) == 0 {
			return fmt.Errorf("tx sign needs --key KEYFILE")
		}
		tx, err := readTxFile(args[0])
		if err != nil {
			return err
		}
		if err := fractal.VerifyPresentSignatures(tx); err != nil {
			return fmt.Errorf("%s: %w (the transaction changed after it was signed)", args[0], err)
		}
		if err := signTx(tx, keyFiles); err != nil {
			return err
		}
		raw, err := tx.MarshalJSON()
		if err != nil {
			return err
		}
		var pretty bytes.Buffer
		json.Indent(&pretty, raw, "", "  ")
		pretty.WriteByte('\n')
		if err := writeNew(out, pretty.Bytes(), 0o644); err != nil {
			return err
		}
		id := tx.ID()
		v := struct {
			Tx      string   `json:"tx"`
			Out     string   `json:"out"`
			Signed  []string `json:"signed"`
			Missing []string `json:"missing"`
		}{Tx: hex.EncodeToString(id[:]), Out: out, Signed: []string{}, Missing: []string{}}
		for i, s := range tx.Signers {
			if i < len(tx.Signatures) && len(tx.Signatures[i]) > 0 {
				v.Signed = append(v.Signed, s.String())
			} else {
				v.Missing = append(v.Missing, s.String())
			}
		}
		return emit(cmd, v, func(w io.Writer) {
			fmt.Fprintf(w, "transaction %s: %d of %d signatures\n", v.Tx, len(v.Signed), len(tx.Signers))
			for _, s := range v.Signed {
				fmt.Fprintf(w, "  signed     %s\n", s)
			}
			for _, s := range v.Missing {
				fmt.Fprintf(w, "  not signed %s\n", s)
			}
			if len(v.Missing) == 0 {
				fmt.Fprintf(w, "fully signed: fractal tx submit %s\n", out)
			}
		})
	}),
}
