package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/dispute"
	"github.com/fractalvm/fractal/fractal/validator"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

// The verifiable chain: queries with proofs, offline proof checks, replay,
// manifest exchange, fork evidence and disputes (docs/cli/chain.md).
func init() {
	rootCmd.AddCommand(queryCmd, checkProofCmd, verifyCmd, manifestCmd, evidenceCmd, disputeCmd)
	manifestCmd.AddCommand(manifestExportCmd, manifestImportCmd)
	queryCmd.Flags().String("key", "", "state key {provenance}/{application}/{owner}/{key} (required)")
	queryCmd.Flags().Bool("prove", false, "include a proof against the signed head block")
	queryCmd.Flags().String("out", "", "also write the proof file (binary) here; needs --prove")
	queryCmd.MarkFlagRequired("key")
	checkProofCmd.Flags().String("instance-key", "", "the instance's executor public key, standard base64")
	checkProofCmd.Flags().String("trust", "", "a trust entry file naming the instance and its validator set (or executor keys)")
	checkProofCmd.Flags().String("instance", "", "the instance ID (64 hex digits) the proof must be about; without it the instance is not checked")
	disputeCmd.Flags().String("out", "", "write the dispute transcript (binary) here")
}

// queryJSON is what query prints with --json.
type queryJSON struct {
	StateKey string     `json:"state_key"`
	Note     *noteJSON  `json:"note"`
	Proof    *proofJSON `json:"proof,omitempty"`
}

// proofJSON carries the proof: the signed block it is against, the tree
// proof, and "encoded", the canonical proof file in base64, which is what
// check-proof reads.
type proofJSON struct {
	Block   blockJSON `json:"block"`
	Tree    string    `json:"tree_proof"`
	Encoded string    `json:"encoded"`
}

var queryCmd = &cobra.Command{
	Use:   "query --key STATEKEY [--prove [--out FILE]]",
	Short: "Show the note at a state key, optionally with a proof anyone can check",
	Long: `query prints the live note at a state key, or says that none lives there.
With --prove it adds a proof: the state-tree path of the key under the head
block's final state root, and that block signed by the executor. The proof
is checkable offline by "fractal check-proof" with only the executor's
public key; --json prints it with an "encoded" field (the proof file in
base64), --out writes the proof file itself.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		k, prove, out, err := queryFlags(cmd)
		if err != nil {
			return err
		}
		return withInstance(func(in *fractal.Instance) error {
			qp, err := in.Prove(k)
			if err != nil {
				return err
			}
			return emitQuery(cmd, k, qp, prove, out)
		})
	}),
}

// queryFlags reads query's --key, --prove and --out.
func queryFlags(cmd *cobra.Command) (k notes.StateKey, prove bool, out string, err error) {
	text, _ := cmd.Flags().GetString("key")
	prove, _ = cmd.Flags().GetBool("prove")
	out, _ = cmd.Flags().GetString("out")
	if out != "" && !prove {
		return k, prove, out, errors.New("query: --out needs --prove")
	}
	k, err = notes.ParseStateKey(text)
	return k, prove, out, err
}

// emitQuery prints a query's answer and, with prove, its proof (also
// written to out when given).
func emitQuery(cmd *cobra.Command, k notes.StateKey, qp *chain.QueryProof, prove bool, out string) error {
	v := queryJSON{StateKey: k.String()}
	if qp.Note != nil {
		j := toNoteJSON(qp.Note)
		v.Note = &j
	}
	if prove {
		file := qp.Encode()
		if out != "" {
			if err := writeNew(out, file, 0o644); err != nil {
				return err
			}
		}
		v.Proof = &proofJSON{Block: toBlockJSON(qp.Block), Tree: hex.EncodeToString(qp.Proof.Encode()), Encoded: base64.StdEncoding.EncodeToString(file)}
	}
	return emit(cmd, v, func(w io.Writer) {
		if v.Note == nil {
			fmt.Fprintf(w, "no note at %s\n", v.StateKey)
		} else {
			fmt.Fprintf(w, "%s %s\n    key %s = %s\n", v.Note.ID[:16], v.StateKey, quoted(v.Note.KeyText, v.Note.Key), quoted(v.Note.ValueText, v.Note.Value))
		}
		if prove {
			fmt.Fprintf(w, "proof against block %d, state root %x (%d levels)\n", qp.Block.Height, qp.Block.StateRoot, len(qp.Proof.Siblings))
		}
	})
}

// Limits on the files the chain verbs read. A proof's JSON form carries its
// block in hex and its binary form in base64: a few MiB at most. A manifest
// file of 256 MiB holds several hundred thousand blocks of a few
// transactions each.
const (
	maxProofFile    = 8 << 20
	maxManifestFile = 256 << 20
)

// readProofFile reads a proof file, binary or the JSON query prints.
func readProofFile(path string) (*chain.QueryProof, error) {
	raw, err := inputfile.Read(path, maxProofFile)
	if err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		var v queryJSON
		if err := json.Unmarshal(t, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if v.Proof == nil {
			return nil, fmt.Errorf("%s: holds no proof (query without --prove)", path)
		}
		if raw, err = base64.StdEncoding.DecodeString(v.Proof.Encoded); err != nil {
			return nil, fmt.Errorf("%s: encoded: %w", path, err)
		}
	}
	qp, err := chain.DecodeQueryProof(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "fractal: "))
	}
	return qp, nil
}

var checkProofCmd = &cobra.Command{
	Use:   "check-proof FILE (--instance-key KEY [--instance ID] | --trust FILE)",
	Short: "Check a query proof offline and say what it proves",
	Long: `check-proof checks a proof made by "fractal query --prove" (the binary file
from --out, or the JSON from --json, of which only the "encoded" field
counts) with nothing but the executor's public key: the block's signature
by that key, the note's place, and the state-tree path from the key to the
block's final state root. It then says what is proven: that a note lives
at the key in the instance at the block's height, or that none does. It
needs no instance folder.

One executor key may sign blocks of several instances, so the key alone
does not say which instance a proof is about: --instance ID refuses a
proof for any other instance. Without it the output says that the
instance was not checked.

A validator-set instance's proof ("fractal validator prove") is checked with
--trust FILE instead: a trust entry naming the instance and its validator
set (a devnet's trust.json, or "fractal peers self --json" on a validator's
home). The proof's block must then carry a certificate: a CometBFT header of
the instance's chain, signed by that validator set, carrying the block's
hash as its app hash, with a commit for it by more than two thirds of the
voting power, every signature checked.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		var instance *[32]byte
		if text, _ := cmd.Flags().GetString("instance"); text != "" {
			id, err := parseHash(text)
			if err != nil {
				return fmt.Errorf("--instance: %w", err)
			}
			instance = (*[32]byte)(&id)
		}
		var auth chain.Authority // a trust entry's, or nil for the executor key
		var pub keys.PublicKey
		text, _ := cmd.Flags().GetString("instance-key")
		trustFile, _ := cmd.Flags().GetString("trust")
		switch {
		case trustFile != "" && (text != "" || instance != nil):
			return errors.New("check-proof: --trust names the instance and its authority: give it without --instance-key and --instance")
		case trustFile != "":
			p, err := readTrustEntry(trustFile)
			if err != nil {
				return err
			}
			instance, auth = &p.ID, p.Authority()
		case text == "":
			return errors.New("check-proof: give --instance-key KEY (a solo instance's executor) or --trust FILE (an instance's trust entry)")
		default:
			var err error
			if pub, err = keys.ParsePublicKey(text); err != nil {
				return fmt.Errorf("--instance-key: %w", err)
			}
		}
		qp, err := readProofFile(args[0])
		if err != nil {
			return err
		}
		var st *chain.Statement
		if auth != nil {
			st, err = chain.CheckQueryProofBy(qp, auth, instance)
		} else {
			st, err = chain.CheckQueryProof(qp, pub, instance)
		}
		if err != nil {
			return err
		}
		v := map[string]any{
			"valid": true, "statement": st.String(), "instance": hex.EncodeToString(st.Instance[:]), "instance_checked": instance != nil,
			"height": st.Height, "state_root": hex.EncodeToString(st.Root[:]), "state_key": st.Key.String(), "note": nil,
		}
		if st.Note != nil {
			v["note"] = toNoteJSON(st.Note)
		}
		return emit(cmd, v, func(w io.Writer) {
			fmt.Fprintf(w, "valid: %s\n", st)
			if instance == nil {
				fmt.Fprintln(w, "instance not checked: pass --instance ID to refuse a proof for another instance signed by the same key")
			}
		})
	}),
}

var verifyCmd = &cobra.Command{
	Use:   "verify",
	Short: "Replay the chain from genesis and check every signature, root and record",
	Long: `verify re-executes every block from genesis into a fresh temporary store
and checks the genesis descriptor, every block's executor signature, hash
link and transactions hash, every stored transaction against its ID, the
state root after every transaction and after every block, every stored
receipt, the live notes, the deployed code against its hashes, and imported
manifests and fork evidence against their signatures. The chain must also
reach every block known to have left this instance: the last block the
guard (guard.json) records as signed, the last block exported by
"manifest export", and every manifest imported from another copy; a
shorter chain has lost committed blocks. On the first disagreement it
names the block and transaction (or the note, code, record or guard) and
exits with status 1. The instance itself is only read; the replay store
lives in the instance's tmp/ folder, which every open empties.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		return withInstance(func(in *fractal.Instance) error {
			var progress func(done, total uint64)
			if head, err := in.Head(); err == nil {
				if bar := stderrBar(int(head.Height), "replaying"); bar != nil {
					defer bar.Finish()
					progress = func(done, _ uint64) { bar.Set(int(done)) }
				}
			}
			rep, err := in.Verify(cmd.Context(), progress)
			if err != nil {
				return err
			}
			v := map[string]any{
				"valid": true, "instance": hex.EncodeToString(rep.Instance[:]), "height": rep.Height,
				"transactions": rep.Transactions, "notes": rep.Notes, "state_root": hex.EncodeToString(rep.StateRoot[:]),
				"imported_manifests": rep.Manifests,
			}
			return emit(cmd, v, func(w io.Writer) {
				fmt.Fprintf(w, "verified %d blocks, %d transactions, %d live notes\nstate root %x\n", rep.Height, rep.Transactions, rep.Notes, rep.StateRoot)
			})
		})
	}),
}

var manifestCmd = &cobra.Command{
	Use:   "manifest",
	Short: "Export and import signed block manifests",
	Long: `manifest exchanges signed blocks (the manifests of the chain) between
copies of one instance, so each can detect a fork.`,
}

var manifestExportCmd = &cobra.Command{
	Use:   "export FILE",
	Short: "Write this instance's signed blocks to a manifest file",
	Long: `export writes every signed block from genesis to the head into FILE (a new
file), in the manifest file format of docs/formats/chain.md. The instance
records the last block it exported: "fractal verify" fails if the chain
later ends before it.

On a validator's home (its validator stopped: CometBFT's block store holds
the certificates) it writes a certified manifest file instead: each block
with the header and commit of the validators that certify it, up to the
last block a committed header certifies.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		if validator.IsHome(flagHome) {
			file, n, err := validator.ExportManifests(flagHome)
			if err != nil {
				return err
			}
			return writeManifests(cmd, args[0], file, n)
		}
		return withInstance(func(in *fractal.Instance) error {
			file, n, err := in.ExportManifests()
			if err != nil {
				return err
			}
			return writeManifests(cmd, args[0], file, n)
		})
	}),
}

// writeManifests writes a manifest file of n blocks to the new file path.
func writeManifests(cmd *cobra.Command, path string, file []byte, n int) error {
	if err := writeNew(path, file, 0o644); err != nil {
		return err
	}
	v := map[string]any{"file": path, "blocks": n}
	return emit(cmd, v, func(w io.Writer) { fmt.Fprintf(w, "exported %d manifests to %s\n", n, path) })
}

var manifestImportCmd = &cobra.Command{
	Use:   "import FILE",
	Short: "Check another copy's manifests against this chain and record forks",
	Long: `import reads a manifest file from another copy of this instance. Every
block must belong to this instance and carry a valid signature by its
executor key, or the whole file is refused and nothing is stored. Blocks
identical to known ones are counted; new consistent ones are kept; a block
that differs from a known one at the same height or with the same parent is
stored, with the block it contradicts, as fork evidence (see "fractal
evidence"). The chain itself is never changed.

A validator-set instance reads a certified manifest file (written by
"manifest export" on another validator's home): every block must belong to
this instance and its certificate must check against its validator set (the
set its trust entry names): the header made by that set, a commit by more
than two thirds of its power, every signature valid, the header's app hash
the block's. The first block that fails refuses the whole file with its
reason. Blocks this chain holds are counted as known, blocks above its head
as ahead (consensus brings them); a certified block that differs from this
chain's at its height is refused as a fork the validators signed. Nothing is
stored.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		data, err := inputfile.Read(args[0], maxManifestFile)
		if err != nil {
			return err
		}
		return withInstance(func(in *fractal.Instance) error {
			res, err := in.ImportManifests(data)
			if err != nil {
				return err
			}
			ev := make([]evidenceJSON, 0, len(res.Evidence))
			for _, e := range res.Evidence {
				ev = append(ev, toEvidenceJSON(e))
			}
			v := map[string]any{"known": res.Known, "stored": res.Stored, "evidence": ev, "unstored": res.Unstored, "ahead": res.Ahead}
			return emit(cmd, v, func(w io.Writer) {
				fmt.Fprintf(w, "%d known, %d new, %d forks found\n", res.Known, res.Stored, len(ev))
				if res.Ahead > 0 {
					fmt.Fprintf(w, "%d certified blocks ahead of this chain (consensus brings them)\n", res.Ahead)
				}
				if res.Unstored > 0 {
					fmt.Fprintf(w, "%d further conflicts not stored (one record per height and per parent proves the fork)\n", res.Unstored)
				}
				for _, e := range ev {
					fmt.Fprintf(w, "FORK at height %d (%s): %s vs %s\n", e.Height, e.Conflict, e.A.Hash[:16], e.B.Hash[:16])
				}
			})
		})
	}),
}

type evidenceJSON struct {
	Conflict string    `json:"conflict"`
	Height   uint64    `json:"height"`
	A        blockJSON `json:"a"`
	B        blockJSON `json:"b"`
}

func toEvidenceJSON(e *chain.Evidence) evidenceJSON {
	return evidenceJSON{Conflict: e.Conflict.String(), Height: e.B.Height, A: toBlockJSON(e.A), B: toBlockJSON(e.B)}
}

var evidenceCmd = &cobra.Command{
	Use:   "evidence",
	Short: "List the recorded fork evidence",
	Long: `evidence lists every fork recorded by "fractal manifest import": two blocks
of this instance, both validly signed by its executor key, at the same
height or extending the same block. Each record is re-checked before it is
printed.

On a validator's home it lists instead the misbehaviour CometBFT's
consensus reported with its blocks (duplicate votes: a validator that
signed two different votes at one height and round), as the blocks that
carried the evidence committed it: the kind, the validator's address, its
power and the set's, the height of the offence and the block that reported
it. The signed votes themselves are in CometBFT's block store.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		return withInstance(func(in *fractal.Instance) error {
			if in.Validators() != nil {
				return validatorEvidence(cmd, in)
			}
			list, err := in.Evidence()
			if err != nil {
				return err
			}
			out := make([]evidenceJSON, 0, len(list))
			for _, e := range list {
				out = append(out, toEvidenceJSON(e))
			}
			return emit(cmd, out, func(w io.Writer) {
				for _, e := range out {
					fmt.Fprintf(w, "fork at height %d (%s), executor %s\n  %s\n  %s\n", e.Height, e.Conflict, e.A.Executor, e.A.Hash, e.B.Hash)
				}
				fmt.Fprintf(w, "%d forks\n", len(out))
			})
		})
	}),
}

var disputeCmd = &cobra.Command{
	Use:   "dispute FILE [--out TRANSCRIPT]",
	Short: "Settle a disagreement with another executor's block by bisection",
	Long: `dispute takes a manifest file holding another executor's signed block (the
first one in the file that differs from this instance's block at its height)
for a height this instance has sealed, with the same parent and transactions
but different state roots. It plays the verification game: bisection over
the two blocks' per-transaction roots (one commitment from each side per
round, about log2(n) rounds), down to one transaction whose pre-state both
accept; this instance then supplies the notes and state-tree nodes that
transaction reads, proven under the agreed root, and the referee
re-executes it alone and names the executor whose claim is wrong. It
prints the rounds and the verdict; --out writes the transcript.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		data, err := inputfile.Read(args[0], maxManifestFile)
		if err != nil {
			return err
		}
		theirs, err := chain.DecodeManifests(data)
		if err != nil {
			return err
		}
		return withInstance(func(in *fractal.Instance) error {
			tr, err := dispute.Challenge(cmd.Context(), in, theirs)
			if err != nil {
				return err
			}
			if out, _ := cmd.Flags().GetString("out"); out != "" {
				if err := writeNew(out, tr.Encode(), 0o644); err != nil {
					return err
				}
			}
			return emit(cmd, toTranscriptJSON(tr), func(w io.Writer) { printTranscript(w, tr) })
		})
	}),
}

type roundJSON struct {
	Lo  int    `json:"agreed_after"`
	Hi  int    `json:"disputed_after"`
	Mid int    `json:"asked_after"`
	A   string `json:"a"`
	B   string `json:"b"`
}

type findingJSON struct {
	Party    string `json:"party"`
	Executor string `json:"executor"`
	Reason   string `json:"reason"`
}

type transcriptJSON struct {
	Instance    string        `json:"instance"`
	Height      uint64        `json:"height"`
	ExecutorA   string        `json:"executor_a"`
	ExecutorB   string        `json:"executor_b"`
	Rounds      []roundJSON   `json:"rounds"`
	Transaction int           `json:"transaction"`
	TxID        string        `json:"txid"`
	PreRoot     string        `json:"pre_root"`
	ClaimA      string        `json:"claim_a"`
	ClaimB      string        `json:"claim_b"`
	Decided     bool          `json:"decided"`
	Root        string        `json:"root,omitempty"`
	Wrong       []findingJSON `json:"wrong"`
	Note        string        `json:"note,omitempty"`
}

func toTranscriptJSON(tr *dispute.Transcript) transcriptJSON {
	h := func(b [32]byte) string { return hex.EncodeToString(b[:]) }
	v := transcriptJSON{
		Instance: h(tr.Instance), Height: tr.Height,
		ExecutorA: keys.PublicKey(tr.ExecutorA).String(), ExecutorB: keys.PublicKey(tr.ExecutorB).String(),
		Rounds: []roundJSON{}, Transaction: tr.Index, TxID: h(tr.TxID), PreRoot: h(tr.PreRoot),
		ClaimA: h(tr.ClaimA), ClaimB: h(tr.ClaimB), Decided: tr.Decided, Wrong: []findingJSON{}, Note: tr.Note,
	}
	if tr.Decided {
		v.Root = h(tr.Root)
	}
	for _, r := range tr.Rounds {
		v.Rounds = append(v.Rounds, roundJSON{r.Lo, r.Hi, r.Mid, h(r.A), h(r.B)})
	}
	for _, f := range tr.Wrong {
		exec := tr.ExecutorA
		if f.Side == dispute.SideB {
			exec = tr.ExecutorB
		}
		v.Wrong = append(v.Wrong, findingJSON{f.Side.String(), keys.PublicKey(exec).String(), f.Reason})
	}
	return v
}

func printTranscript(w io.Writer, tr *dispute.Transcript) {
	fmt.Fprintf(w, "dispute over block %d: A (this instance) %s, B %s\n", tr.Height, keys.PublicKey(tr.ExecutorA), keys.PublicKey(tr.ExecutorB))
	for i, r := range tr.Rounds {
		verdict := "disagree"
		if r.A == r.B {
			verdict = "agree"
		}
		fmt.Fprintf(w, "round %d: after transaction %d: A %x B %x: %s\n", i+1, r.Mid, r.A[:8], r.B[:8], verdict)
	}
	fmt.Fprintf(w, "disputed transaction %d (%x)\n", tr.Index, tr.TxID)
	if tr.Decided {
		fmt.Fprintf(w, "re-executed from root %x: root %x\n", tr.PreRoot[:8], tr.Root[:8])
	} else {
		fmt.Fprintf(w, "undecided: %s\n", tr.Note)
	}
	for _, f := range tr.Wrong {
		fmt.Fprintf(w, "WRONG: %s: %s\n", f.Side, f.Reason)
	}
}
