package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

func init() {
	rootCmd.AddCommand(initCmd, notesCmd, blockCmd)
	notesCmd.Flags().String("pattern", "*/*/*/*", "constraint pattern the notes' state keys must match")
}

var initCmd = &cobra.Command{
	Use:   "init",
	Short: "Create a new instance in the --home folder",
	Long: `init creates a Fractal instance in the --home folder (default ./.fractal):
a new executor key (executor.key), the badger store (db/), the configuration
(config.json) and the signed genesis block. It refuses a folder that already
holds an instance. It prints the instance ID and the executor public key.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		in, err := fractal.Init(flagHome, fractal.DefaultConfig())
		if err != nil {
			return err
		}
		defer in.Close()
		id := in.ID()
		out := map[string]string{"home": flagHome, "instance": hex.EncodeToString(id[:]), "executor": in.Executor().String()}
		return emit(cmd, out, func(w io.Writer) {
			fmt.Fprintf(w, "initialised instance %x in %s\nexecutor key %s\n", id, flagHome, in.Executor())
		})
	}),
}

// noteJSON is the JSON form of a live note: hashes and bytes in lower-case
// hex, and the value also as text when it is printable UTF-8.
type noteJSON struct {
	ID          string   `json:"id"`
	StateKey    string   `json:"state_key"`
	Provenance  []string `json:"provenance"`
	Application string   `json:"application"`
	Owner       string   `json:"owner"`
	Key         string   `json:"key"`
	KeyText     *string  `json:"key_text,omitempty"`
	Value       string   `json:"value"`
	ValueText   *string  `json:"value_text,omitempty"`
}

func toNoteJSON(n *notes.Note) noteJSON {
	id := n.ID()
	j := noteJSON{
		ID: hex.EncodeToString(id[:]), StateKey: n.StateKey().String(), Provenance: []string{},
		Application: hex.EncodeToString(n.Application[:]), Owner: hex.EncodeToString(n.Owner[:]),
		Key: hex.EncodeToString(n.Key), Value: hex.EncodeToString(n.Value),
	}
	for _, p := range n.Provenance {
		j.Provenance = append(j.Provenance, hex.EncodeToString(p))
	}
	j.KeyText, j.ValueText = textOf(n.Key), textOf(n.Value)
	return j
}

// textOf returns b as a string when it is printable UTF-8, else nil.
func textOf(b []byte) *string {
	if s := string(b); printable(s) {
		return &s
	}
	return nil
}

// quoted renders bytes for people: quoted text when printable, else 0x hex.
func quoted(text *string, hexText string) string {
	if text != nil {
		return strconv.Quote(*text)
	}
	return "0x" + hexText
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

var notesCmd = &cobra.Command{
	Use:   "notes [--pattern P]",
	Short: "List the live notes, optionally those matching a constraint pattern",
	Long: `notes lists the instance's live notes in state-key order. --pattern takes a
constraint pattern in the state-key form {provenance}/{application}/{owner}/{key}
where any part may be "*" (and the key part may end in "*" for a prefix); the
default "*/*/*/*" lists every note. Each note is printed with the start of
its ID and its state key, then its key and value (quoted text when printable,
else 0x and hex).`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		text, _ := cmd.Flags().GetString("pattern")
		p, err := notes.ParsePattern(text)
		if err != nil {
			return err
		}
		return withInstance(func(in *fractal.Instance) error {
			list, err := in.Notes(p)
			if err != nil {
				return err
			}
			return emitNotes(cmd, list)
		})
	}),
}

// emitNotes prints a list of live notes.
func emitNotes(cmd *cobra.Command, list []*notes.Note) error {
	out := make([]noteJSON, 0, len(list))
	for _, n := range list {
		out = append(out, toNoteJSON(n))
	}
	return emit(cmd, out, func(w io.Writer) {
		for _, n := range out {
			fmt.Fprintf(w, "%s %s\n    key %s = %s\n", n.ID[:16], n.StateKey, quoted(n.KeyText, n.Key), quoted(n.ValueText, n.Value))
		}
		fmt.Fprintf(w, "%d notes\n", len(out))
	})
}

// blockJSON is the JSON form of a block; hashes in lower-case hex, the
// executor key and signature in standard base64.
type blockJSON struct {
	Height         uint64   `json:"height"`
	Hash           string   `json:"hash"`
	Instance       string   `json:"instance"`
	Prev           string   `json:"prev"`
	TxsHash        string   `json:"txs_hash"`
	Transactions   []string `json:"transactions"`
	Roots          []string `json:"roots"`
	StateRoot      string   `json:"state_root"`
	CommitmentRoot string   `json:"commitment_root"`
	Executor       string   `json:"executor"`
	Signature      string   `json:"signature"`
}

func hexes(hs [][32]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = hex.EncodeToString(h[:])
	}
	return out
}

func toBlockJSON(b *chain.Block) blockJSON {
	h := b.Hash()
	return blockJSON{
		Height: b.Height, Hash: hex.EncodeToString(h[:]), Instance: hex.EncodeToString(b.Instance[:]),
		Prev: hex.EncodeToString(b.Prev[:]), TxsHash: hex.EncodeToString(b.TxsHash[:]),
		Transactions: hexes(b.TxIDs), Roots: hexes(b.Roots), StateRoot: hex.EncodeToString(b.StateRoot[:]),
		CommitmentRoot: hex.EncodeToString(b.CommitmentRoot[:]), Executor: keys.PublicKey(b.Executor).String(),
		Signature: keys.FormatSignature(b.Signature[:]),
	}
}

var blockCmd = &cobra.Command{
	Use:   "block [HEIGHT]",
	Short: "Show a sealed block (the last one by default)",
	Long: `block prints the block at HEIGHT, or the last sealed block: its hash, the
previous block's hash, the transactions it committed, the state root after
each of them, the final state root, and the executor's signature, which is
checked before printing.`,
	Args: cobra.MaximumNArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		h, err := blockHeight(args)
		if err != nil {
			return err
		}
		return withInstance(func(in *fractal.Instance) error {
			var b *chain.Block
			var err error
			if h != nil {
				b, err = in.Block(*h)
			} else {
				b, err = in.Head()
			}
			if err != nil {
				return err
			}
			return emitBlock(cmd, b)
		})
	}),
}

// blockHeight reads block's optional HEIGHT argument.
func blockHeight(args []string) (*uint64, error) {
	if len(args) == 0 {
		return nil, nil
	}
	h, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("block height %q is not a number", args[0])
	}
	return &h, nil
}

// emitBlock prints a block after checking its executor signature.
func emitBlock(cmd *cobra.Command, b *chain.Block) error {
	if err := chain.VerifyBlock(b); err != nil {
		return err
	}
	j := toBlockJSON(b)
	return emit(cmd, j, func(w io.Writer) {
		fmt.Fprintf(w, "block %d %s\n", j.Height, j.Hash)
		fmt.Fprintf(w, "  prev        %s\n", j.Prev)
		fmt.Fprintf(w, "  state root  %s\n", j.StateRoot)
		fmt.Fprintf(w, "  executor    %s (signature valid)\n", j.Executor)
		fmt.Fprintf(w, "  %d transactions\n", len(j.Transactions))
		for i, id := range j.Transactions {
			fmt.Fprintf(w, "    %s -> root %s\n", id, j.Roots[i])
		}
	})
}
