package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/keyholder"
)

// The encrypted mempool's verbs: attach a threshold key to an instance, make
// and submit keyholder shares, inspect the waiting batch and outcomes; and
// tx submit --encrypt. docs/cli/encrypted-mempool.md.

func init() {
	txSubmitCmd.Flags().Bool("encrypt", false, "seal the signed transaction to the instance's threshold key and queue the ciphertext")

	tfheAttachCmd.Flags().String("key", "", "threshold public key file (public.key of a keyholder's epoch, or of fractal tfhe setup)")
	tfheAttachCmd.Flags().String("transcript", "", "the DKG's transcript (default: transcript.bin beside the key file)")
	f := tfheShareCmd.Flags()
	f.String("share", "", "this keyholder's share file (keyholder-I/share.key)")
	f.String("out", "", "write the shares to this file instead of submitting them")
	f.Bool("no-seal", false, "do not open the batch even when this makes k shares")
	tfheSubmitShareCmd.Flags().Bool("no-seal", false, "do not open the batch even when this makes k shares")

	tfheExpireCmd.Flags().Uint64("batch", 0, "number of the waiting batch to expire (as fractal tfhe pending prints it)")
	tfheExpireCmd.MarkFlagRequired("batch")

	tfheCmd.AddCommand(tfheAttachCmd, tfhePendingCmd, tfheShareCmd, tfheSubmitShareCmd, tfheOutcomeCmd, tfheExpireCmd)
}

var tfheAttachCmd = &cobra.Command{
	Use:   "attach --key FILE [--transcript FILE]",
	Short: "Attach a threshold public key to the instance for encrypted transactions",
	Long: `attach makes the threshold public key in FILE the key that fractal tx submit
--encrypt seals transactions to. A key from a DKG is attached with its
transcript (--transcript, by default transcript.bin beside the key file),
which is checked first (as fractal tfhe check-transcript does): it must make
this key, and a key of keyholders apart must have been made for this
instance. The key records its transcript's hash, so the instance keeps
which DKG made it. Attaching the same key again changes nothing; another key
is refused while encrypted transactions are queued or wait for shares. A
development or trusted-dealer key is accepted and reported as such.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		vals, err := required(cmd, "key")
		if err != nil {
			return err
		}
		pk, err := readDecoded(vals[0], maxTfheFile, tfhe.DecodePublicKey)
		if err != nil {
			return err
		}
		var o *dkg.Outcome
		if pk.Origin != tfhe.OriginTrustedDealer {
			tf, _ := cmd.Flags().GetString("transcript")
			if tf == "" {
				tf = filepath.Join(filepath.Dir(vals[0]), keyholder.TranscriptFile)
			}
			t, err := readDecoded(tf, dkg.MaxTranscript, dkg.DecodeTranscript)
			if err != nil {
				return fmt.Errorf("a key from a DKG is attached with its transcript: %w", err)
			}
			if o, err = tfhe.CheckTranscript(pk, t); err != nil {
				return fmt.Errorf("%s: %w", tf, err)
			}
		}
		return withInstance(func(in *fractal.Instance) error {
			if o != nil && o.Session.Instance != in.ID() && (pk.Origin == tfhe.OriginDKG || o.Session.Instance != [32]byte{}) {
				return fmt.Errorf("the key was made for instance %x, this is %x", o.Session.Instance[:8], in.ID())
			}
			if err := in.AttachThresholdKey(pk); err != nil {
				return err
			}
			id := pk.ID()
			out := map[string]any{"key": hex.EncodeToString(id[:]), "n": pk.N, "k": pk.K, "origin": pk.Origin.String(),
				"transcript": hexOrEmpty(pk.Transcript)}
			return emit(cmd, out, func(w io.Writer) {
				fmt.Fprintf(w, "attached threshold key %x (%d of %d, %s)\n", id, pk.K, pk.N, pk.Origin)
				if o != nil {
					fmt.Fprintf(w, "transcript %x checked: dealers %s; holders %s\n", o.Hash, intList(o.Qual), intList(o.Holders))
				}
			})
		})
	}),
}

var tfhePendingCmd = &cobra.Command{
	Use:   "pending",
	Short: "Show the encrypted batch waiting for keyholder shares",
	Long: `pending prints the encrypted batch whose order is fixed and which waits for
keyholder shares: its number, payload IDs in slot order, commitment, the
keyholders whose shares are in, those not yet in, and how many are needed;
and how many encrypted transactions are queued behind it.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		return withInstance(func(in *fractal.Instance) error {
			st, err := in.PendingEncrypted()
			if err != nil {
				return err
			}
			queued, err := in.QueuedEncrypted()
			if err != nil {
				return err
			}
			keyholders := 0
			if st != nil {
				pk, err := in.ThresholdKey()
				if err != nil {
					return err
				}
				keyholders = pk.N
			}
			return emitPending(cmd, st, keyholders, len(queued))
		})
	}),
}

// emitPending prints the batch waiting for shares (st, nil when none) and
// how many encrypted transactions are queued behind it.
func emitPending(cmd *cobra.Command, st *fractal.EncryptedStatus, keyholders, queued int) error {
	out := struct {
		Batch  *encryptedJSON `json:"batch"`
		NotYet []int          `json:"not_yet"`
		Queued int            `json:"queued"`
		Chain  *chainWaitJSON `json:"chain,omitempty"`
	}{Batch: toEncryptedJSON(st), NotYet: []int{}, Queued: queued}
	if st != nil {
		for i := 1; i <= keyholders; i++ {
			if !slices.Contains(st.Shares, i) {
				out.NotYet = append(out.NotYet, i)
			}
		}
		out.Chain = toChainWaitJSON(st, keyholders)
	}
	return emit(cmd, out, func(w io.Writer) {
		switch {
		case st == nil:
			fmt.Fprintln(w, "no encrypted batch is waiting for shares")
		case st.Chain != nil:
			printChainWait(w, st, out.Chain)
		default:
			fmt.Fprintln(w, encryptedLine(st))
			fmt.Fprintf(w, "keyholders not yet in: %s\n", intList(out.NotYet))
		}
		if st != nil {
			for i, id := range st.Batch.PayloadIDs {
				fmt.Fprintf(w, "  slot %d payload %x\n", i, id)
			}
		}
		if st == nil || st.Chain == nil { // a validator set has no queue: its batches are blocks'
			fmt.Fprintf(w, "%d encrypted transactions queued\n", queued)
		}
	})
}

// chainWaitJSON is where a validator set's waiting batch stands
// (decision 164).
type chainWaitJSON struct {
	Key        string `json:"key"`
	N          int    `json:"n"`
	FixedAt    uint64 `json:"fixed_at"`
	ExpiresAt  uint64 `json:"expires_at"`
	Decided    uint64 `json:"decided"`
	BlocksLeft uint64 `json:"blocks_left"`
	SharesAt   uint64 `json:"shares_at"`
}

func toChainWaitJSON(st *fractal.EncryptedStatus, n int) *chainWaitJSON {
	c := st.Chain
	if c == nil {
		return nil
	}
	j := &chainWaitJSON{Key: hex.EncodeToString(st.Batch.Key[:]), N: n, FixedAt: c.FixedAt, ExpiresAt: c.ExpiresAt, Decided: c.Decided, SharesAt: c.SharesAt}
	if c.ExpiresAt > c.Decided {
		j.BlocksLeft = c.ExpiresAt - c.Decided
	}
	return j
}

// printChainWait prints a validator set's waiting batch: what it waits
// for, since and until which height, and what the last shares
// transaction brought.
func printChainWait(w io.Writer, st *fractal.EncryptedStatus, c *chainWaitJSON) {
	b := st.Batch
	fmt.Fprintf(w, "encrypted batch %d waits for shares: %d payloads fixed at height %d, key %s, k %d of n %d\n", b.Number, len(b.PayloadIDs), c.FixedAt, c.Key, st.Needed, c.N)
	fmt.Fprintf(w, "expires at height %d unless k keyholders' shares open it: %d blocks after height %d\n", c.ExpiresAt, c.BlocksLeft, c.Decided)
	if c.SharesAt == 0 {
		fmt.Fprintln(w, "no shares transaction for it yet")
		return
	}
	fmt.Fprintf(w, "the shares transaction at height %d carried valid shares of keyholders %s (%d of %d needed)\n", c.SharesAt, intList(st.Shares), len(st.Shares), st.Needed)
}

var tfheShareCmd = &cobra.Command{
	Use:   "share --share FILE [--out FILE]",
	Short: "Make this keyholder's decryption shares for the waiting encrypted batch",
	Long: `share computes keyholder I's decryption shares (with their proofs) for every
payload of the encrypted batch that waits in the instance at --home, using
the share file written by fractal tfhe setup (keyholder-I/share.key). A
payload whose proof of knowledge fails gets no share.

Without --out the shares are submitted at once: checked, stored, and, when
they make k, the batch is opened and its transactions executed in the fixed
order (unless --no-seal). With --out they are written to FILE for fractal
tfhe submit-share instead.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		sk, err := keyShareFlag(cmd)
		if err != nil {
			return err
		}
		return withInstance(func(in *fractal.Instance) error {
			sb, err := in.MakeShares(cmd.Context(), sk)
			if err != nil {
				return err
			}
			if out, _ := cmd.Flags().GetString("out"); out != "" {
				return writeShares(cmd, sb, out)
			}
			return submitShares(cmd, in, sb.Encode())
		})
	}),
}

var tfheSubmitShareCmd = &cobra.Command{
	Use:   "submit-share FILE",
	Short: "Submit a keyholder's share file for the waiting encrypted batch",
	Long: `submit-share checks the shares in FILE (written by fractal tfhe share --out)
against the encrypted batch waiting in the instance: every share's proof must
hold, for the right payload, from a keyholder who has not submitted yet. A
bad file is refused naming the keyholder, and nothing is stored. When the
stored shares make k, the batch is opened and its transactions executed in
the fixed order (unless --no-seal).`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		raw, err := inputfile.Read(args[0], maxTfheFile)
		if err != nil {
			return err
		}
		return withInstance(func(in *fractal.Instance) error {
			return submitShares(cmd, in, raw)
		})
	}),
}

// keyShareFlag reads the key share file --share names.
func keyShareFlag(cmd *cobra.Command) (*tfhe.KeyShare, error) {
	vals, err := required(cmd, "share")
	if err != nil {
		return nil, err
	}
	return readDecoded(vals[0], maxTfheFile, tfhe.DecodeKeyShare)
}

// writeShares writes one keyholder's share batch to the file out.
func writeShares(cmd *cobra.Command, sb *tfhe.ShareBatch, out string) error {
	if err := writeNew(out, sb.Encode(), 0o644); err != nil {
		return err
	}
	v := map[string]any{"keyholder": sb.Index, "shares": len(sb.Shares), "out": out}
	return emit(cmd, v, func(w io.Writer) {
		fmt.Fprintf(w, "wrote %d shares of keyholder %d to %s\n", len(sb.Shares), sb.Index, out)
	})
}

// submitShares stores one keyholder's shares and, when k are in, seals.
func submitShares(cmd *cobra.Command, in *fractal.Instance, raw []byte) error {
	st, err := in.SubmitShares(raw)
	if err != nil {
		return err
	}
	if noSeal, _ := cmd.Flags().GetBool("no-seal"); noSeal || len(st.Shares) < st.Needed {
		return emitBatch(cmd, st)
	}
	s, err := in.Seal(cmd.Context())
	if err != nil {
		return err
	}
	return emitSealed(cmd, s)
}

// emitBatch prints an encrypted batch's state.
func emitBatch(cmd *cobra.Command, st *fractal.EncryptedStatus) error {
	return emit(cmd, map[string]any{"batch": toEncryptedJSON(st)}, func(w io.Writer) {
		fmt.Fprintln(w, encryptedLine(st))
	})
}

var tfheOutcomeCmd = &cobra.Command{
	Use:   "outcome PAYLOADID",
	Short: "Show what became of an encrypted transaction",
	Long: `outcome prints, for the payload ID printed by fractal tx submit --encrypt,
the encrypted batch and slot it was opened in, the transaction ID and its
receipt: accepted, refused in a phase, or dropped because the payload did
not decrypt or its plaintext did not parse or was not validly signed.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		id, err := parseHash(args[0])
		if err != nil {
			return fmt.Errorf("payload ID: %w", err)
		}
		return withInstance(func(in *fractal.Instance) error {
			o, err := in.Outcome(id)
			if err != nil {
				return err
			}
			return emitEncryptedOutcome(cmd, id, o)
		})
	}),
}

// emitEncryptedOutcome prints what became of the payload id.
func emitEncryptedOutcome(cmd *cobra.Command, id [32]byte, o *fractal.EncryptedOutcome) error {
	out := map[string]any{"batch": o.Batch, "slot": o.Slot, "tx": hexOrEmpty(o.TxID), "receipt": o.Receipt}
	return emit(cmd, out, func(w io.Writer) {
		fmt.Fprintf(w, "payload %x opened in encrypted batch %d slot %d\n", id, o.Batch, o.Slot)
		printReceipt(w, o.Receipt, nil)
	})
}

var tfheExpireCmd = &cobra.Command{
	Use:   "expire --batch N",
	Short: "Close the waiting encrypted batch undecrypted, dropping every payload",
	Long: `expire is the executor's way out when fewer than k keyholders answer: it
closes encrypted batch N, the batch waiting for shares, without decrypting it.
The executor signs the expiry; every payload of the batch is dropped with the
receipt "encrypted transaction dropped: expired: not decrypted by K
keyholders"; transactions that arrived after the batch can be sealed again.
Shares for the batch are refused afterwards, and fractal verify checks the
expiry. It is refused when N is not the waiting batch, or when k shares are
already in (fractal block seal opens it then). Decision 078.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		n, _ := cmd.Flags().GetUint64("batch")
		return withInstance(func(in *fractal.Instance) error {
			s, err := in.ExpireEncrypted(cmd.Context(), n)
			if err != nil {
				return err
			}
			return emitSealed(cmd, s)
		})
	}),
}

func hexOrEmpty(h [32]byte) string {
	if h == [32]byte{} {
		return ""
	}
	return hex.EncodeToString(h[:])
}

// submitEncrypted is tx submit --encrypt: it seals the signed transaction
// to the instance's threshold key, queues the ciphertext and, unless
// --no-seal, seals until the ciphertext's place in a batch is fixed (or it
// waits behind a batch that is not yet opened).
func submitEncrypted(cmd *cobra.Command, tx *phases.Tx) error {
	return withInstance(func(in *fractal.Instance) error {
		pid, err := in.SubmitEncryptedTx(tx)
		if err != nil {
			return err
		}
		txid := tx.ID()
		out := struct {
			Payload string         `json:"payload"`
			Tx      string         `json:"tx"`
			Status  string         `json:"status"`
			Sealed  []*sealedJSON  `json:"sealed"`
			Batch   *encryptedJSON `json:"batch"`
			text    []*fractal.Sealed
		}{Payload: hex.EncodeToString(pid[:]), Tx: hex.EncodeToString(txid[:]), Status: "queued", Sealed: []*sealedJSON{}}
		if noSeal, _ := cmd.Flags().GetBool("no-seal"); !noSeal {
			seals, fixed, err := in.SealUntilPlaced(cmd.Context(), pid)
			if err != nil {
				return err
			}
			out.text = seals
			for _, s := range seals {
				out.Sealed = append(out.Sealed, toSealedJSON(s))
			}
			if fixed != nil {
				out.Status, out.Batch = "fixed", toEncryptedJSON(fixed)
			}
		}
		return emit(cmd, out, func(w io.Writer) {
			fmt.Fprintf(w, "queued encrypted payload %x (transaction %x)\n", pid, txid)
			for _, s := range out.text {
				printSealed(w, s)
			}
		})
	})
}

// encryptedJSON is an EncryptedStatus for --json.
type encryptedJSON struct {
	Batch      uint64   `json:"batch"`
	State      string   `json:"state"`
	Payloads   []string `json:"payloads"`
	Commitment string   `json:"commitment"`
	Shares     []int    `json:"shares"`
	Needed     int      `json:"needed"`
}

func toEncryptedJSON(st *fractal.EncryptedStatus) *encryptedJSON {
	if st == nil {
		return nil
	}
	c := st.Batch.Commitment()
	j := &encryptedJSON{Batch: st.Batch.Number, State: st.State.String(), Commitment: hex.EncodeToString(c[:]), Shares: st.Shares, Needed: st.Needed}
	if j.Shares == nil {
		j.Shares = []int{}
	}
	for _, id := range st.Batch.PayloadIDs {
		j.Payloads = append(j.Payloads, hex.EncodeToString(id[:]))
	}
	return j
}

// encryptedLine is a one-line summary of an encrypted batch's state.
func encryptedLine(st *fractal.EncryptedStatus) string {
	b := st.Batch
	switch st.State {
	case fractal.BatchFixed:
		c := b.Commitment()
		return fmt.Sprintf("fixed encrypted batch %d: %d payloads, commitment %x; waiting for %d keyholder shares", b.Number, len(b.PayloadIDs), c, st.Needed)
	case fractal.BatchOpened:
		return fmt.Sprintf("opened encrypted batch %d with the shares of keyholders %s", b.Number, intList(st.Shares))
	case fractal.BatchExpired:
		return fmt.Sprintf("expired encrypted batch %d: %d payloads dropped, %d of %d shares were in", b.Number, len(b.PayloadIDs), len(st.Shares), st.Needed)
	}
	return fmt.Sprintf("encrypted batch %d waits for keyholder shares: %d of %d in (keyholders %s)", b.Number, len(st.Shares), st.Needed, intList(st.Shares))
}

func intList(a []int) string {
	if len(a) == 0 {
		return "none"
	}
	s := make([]string, len(a))
	for i, v := range a {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ", ")
}

// sealedJSON is a seal's result for --json.
type sealedJSON struct {
	Block     *blockJSON        `json:"block"`
	Receipts  []*phases.Receipt `json:"receipts"`
	Encrypted *encryptedJSON    `json:"encrypted"`
}

func toSealedJSON(s *fractal.Sealed) *sealedJSON {
	j := &sealedJSON{Receipts: s.Receipts, Encrypted: toEncryptedJSON(s.Encrypted)}
	if s.Block != nil {
		b := toBlockJSON(s.Block)
		j.Block = &b
	}
	if j.Receipts == nil {
		j.Receipts = []*phases.Receipt{}
	}
	return j
}

func emitSealed(cmd *cobra.Command, s *fractal.Sealed) error {
	return emit(cmd, toSealedJSON(s), func(w io.Writer) { printSealed(w, s) })
}

// printSealed writes a seal's result for people: the encrypted batch's
// state, the block and every receipt.
func printSealed(w io.Writer, s *fractal.Sealed) {
	if s.Encrypted != nil {
		fmt.Fprintln(w, encryptedLine(s.Encrypted))
	}
	if s.Block != nil {
		fmt.Fprintf(w, "sealed block %d %x with %d transactions\n", s.Block.Height, s.Block.Hash(), len(s.Block.TxIDs))
	} else if len(s.Receipts) > 0 {
		fmt.Fprintln(w, "no transaction accepted; no block sealed")
	}
	for _, rc := range s.Receipts {
		fmt.Fprintf(w, "  %s\n", receiptLine(rc))
	}
}
