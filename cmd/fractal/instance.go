package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

func init() {
	rootCmd.AddCommand(initCmd, notesCmd, blockCmd)
	f := initCmd.Flags()
	f.String("fee-app", "", "fee token: its application predicate, a Lua file or its 64-hex-digit hash (examples/token/token.lua)")
	f.String("fee-owner", "", "fee token: its owner predicate, a Lua file or its hash (examples/sig/sig.lua)")
	f.String("fee-token", "", "fee token: <issuer public key>:<SYMBOL>, as the token example names a token")
	f.Uint64("min-gas-price", 0, "lowest gas price admission accepts (config.json min_gas_price); above 0 every transaction must offer a fee")
	f.String("reward-app", "", "block reward: the reward notes' application predicate, a Lua file or its hash (examples/reward/reward.lua)")
	f.String("reward-owner", "", "block reward: the reward notes' owner predicate, a Lua file or its hash (examples/sig/sig.lua)")
	f.Uint64("reward", 0, "block reward: the amount each block's reward note holds (0: no reward)")
	notesCmd.Flags().String("pattern", "*/*/*/*", "constraint pattern the notes' state keys must match")
}

var initCmd = &cobra.Command{
	Use:   "init",
	Short: "Create a new instance in the --home folder",
	Long: `init creates a Fractal instance in the --home folder (default ./.fractal):
a new executor key (executor.key), the badger store (db/), the configuration
(config.json) and the signed genesis block. It refuses a folder that already
holds an instance. It prints the instance ID and the executor public key.

The chain's rules are fixed here, in the genesis descriptor the instance ID
hashes (decision 141): a fee token (--fee-app, --fee-owner and --fee-token
together; decision 140) that transactions may pay fees in, and a block reward
(--reward-app, --reward-owner and --reward together; decision 143) that every
block mints to its producer. --min-gas-price writes config.json's
min_gas_price, a local admission policy that needs a fee token. The per-key
limit (decision 142) is on in a new config.json (per_key_limit).`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		rules, err := initRules(cmd)
		if err != nil {
			return err
		}
		cfg := fractal.DefaultConfig()
		cfg.MinGasPrice, _ = cmd.Flags().GetUint64("min-gas-price")
		in, err := fractal.Init(flagHome, cfg, fractal.WithRules(rules))
		if err != nil {
			return err
		}
		defer in.Close()
		id := in.ID()
		out := map[string]string{"home": flagHome, "instance": hex.EncodeToString(id[:]), "executor": in.Executor().String()}
		if rules.Fee != nil {
			out["fee_token"] = rules.Fee.Token
		}
		if rules.Reward != nil {
			out["reward"] = strconv.FormatUint(rules.Reward.Amount, 10)
		}
		return emit(cmd, out, func(w io.Writer) {
			fmt.Fprintf(w, "initialised instance %x in %s\nexecutor key %s\n", id, flagHome, in.Executor())
			if rules.Fee != nil {
				fmt.Fprintf(w, "fee token %s, minimum gas price %d\n", rules.Fee.Token, cfg.MinGasPrice)
			}
			if rules.Reward != nil {
				fmt.Fprintf(w, "block reward %d\n", rules.Reward.Amount)
			}
		})
	}),
}

// initRules reads init's rule flags: each group all or nothing.
func initRules(cmd *cobra.Command) (chain.Rules, error) {
	var r chain.Rules
	fl := cmd.Flags()
	get := func(name string) string { s, _ := fl.GetString(name); return s }
	feeApp, feeOwner, token := get("fee-app"), get("fee-owner"), get("fee-token")
	if feeApp != "" || feeOwner != "" || token != "" {
		if feeApp == "" || feeOwner == "" || token == "" {
			return r, fmt.Errorf("--fee-app, --fee-owner and --fee-token go together")
		}
		r.Fee = &phases.FeeToken{Token: token}
		var err error
		if r.Fee.Application, r.Fee.Owner, err = codeHashes(feeApp, feeOwner); err != nil {
			return r, err
		}
	}
	amount, _ := fl.GetUint64("reward")
	rewardApp, rewardOwner := get("reward-app"), get("reward-owner")
	if amount != 0 || rewardApp != "" || rewardOwner != "" {
		if amount == 0 || rewardApp == "" || rewardOwner == "" {
			return r, fmt.Errorf("--reward-app, --reward-owner and --reward (at least 1) go together")
		}
		r.Reward = &chain.Reward{Amount: amount}
		var err error
		if r.Reward.Application, r.Reward.Owner, err = codeHashes(rewardApp, rewardOwner); err != nil {
			return r, err
		}
	}
	return r, r.Check()
}

// codeHashes reads an application and an owner predicate's hashes
// (codeHash).
func codeHashes(app, owner string) (a, o notes.Hash, err error) {
	if a, err = codeHash(app); err == nil {
		o, err = codeHash(owner)
	}
	return a, o, err
}

// codeHash reads a predicate's hash: 64 hex digits, or a Lua file whose
// SHA-256 is the hash the instance deploys it under.
func codeHash(arg string) (notes.Hash, error) {
	if raw, err := hex.DecodeString(arg); err == nil && len(raw) == 32 {
		return notes.Hash(raw), nil
	}
	src, err := inputfile.Read(arg, chain.MaxCodeBytes)
	if err != nil {
		return notes.Hash{}, err
	}
	return sha256.Sum256(src), nil
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
