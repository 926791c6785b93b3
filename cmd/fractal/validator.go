package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/validator"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/tfhe"
)

// The verbs of validator-set instances (docs/cli/validator.md): devnet
// writes the homes, validator run runs one, and the other validator verbs
// talk to a running one over CometBFT's RPC.

func init() {
	devnetCmd.Flags().Int("validators", 4, "how many validators (1 to 64)")
	devnetCmd.Flags().String("out", "", "the folder to write (must not exist or be empty)")
	devnetCmd.Flags().Int("base-port", 26600, "validator K listens for P2P on 127.0.0.(K+1):BASE+2K, serves RPC on BASE+2K+1 and the API (fractal node) on BASE+128+K")
	devnetCmd.Flags().Duration("timeout-commit", time.Second, "CometBFT's timeout_commit: the pause after each block")
	devnetCmd.Flags().Int("mempool-size", 5000, "each validator's mempool capacity in transactions")
	devnetCmd.Flags().String("zk", "", "a circuit key folder (fractal shielded setup) copied into every home")
	devnetCmd.Flags().Bool("encrypted", false, "make the validators the keyholders of a threshold key: a DKG among them at genesis, each home its own share")
	devnetCmd.Flags().Uint64("encrypted-expiry-blocks", fractal.DefaultEncryptedExpiryBlocks, "with --encrypted: the heights an encrypted batch may wait for shares before a block closes it as expired")
	devnetCmd.Flags().Uint64("epoch-blocks", 0, "with --encrypted: a new threshold key every N heights, made by a DKG among the validators as transactions (0: the genesis key for ever)")
	devnetCmd.Flags().Uint64("dkg-window", 5, "with --epoch-blocks: the heights of each of the DKG's three rounds, before each epoch start")
	devnetCmd.Flags().StringArray("trust", nil, "a trust entry file (fractal peers self --json) every validator trusts (repeatable)")
	validatorRunCmd.Flags().String("log-level", "*:error", `CometBFT's log level ("consensus:info,*:error" shows the heights)`)
	for _, c := range []*cobra.Command{validatorSubmitCmd, validatorDeployCmd, validatorProveCmd, validatorClaimCmd, validatorImportCmd} {
		c.Flags().String("rpc", "", "the validator's RPC address (default: the one in --home's config/config.toml)")
	}
	validatorSubmitCmd.Flags().StringArray("key", nil, "key file that signs the transaction (repeatable)")
	validatorSubmitCmd.Flags().Bool("encrypted", false, "seal the transaction to the validators' threshold key in force (from their node, or the genesis) and hand in the encrypted transaction")
	validatorSubmitCmd.Flags().String("genesis", "", "with --encrypted: seal to the threshold key this genesis file names (default, with no node: --home's config/genesis.json)")
	validatorSubmitCmd.Flags().String("node", "", "with --encrypted: seal to the threshold key in force that the validator's node at URL serves (default: the node running on --home, if any)")
	validatorImportCmd.Flags().String("key", "", "key file that signs the import transaction")
	validatorProveCmd.Flags().String("key", "", "the state key")
	validatorProveCmd.Flags().String("out", "", "the proof file to write (must not exist)")
	validatorClaimCmd.Flags().String("out", "", "the claim file to write (must not exist)")
	validatorCmd.AddCommand(validatorRunCmd, validatorSubmitCmd, validatorDeployCmd, validatorProveCmd, validatorClaimCmd, validatorImportCmd)
	rootCmd.AddCommand(devnetCmd, validatorCmd)
}

var devnetCmd = &cobra.Command{
	Use:   "devnet --validators N --out DIR [--base-port 26600] [--timeout-commit 1s] [--encrypted [--encrypted-expiry-blocks 100] [--epoch-blocks N [--dkg-window W]]] [--trust FILE]...",
	Short: "Write the homes of a local validator-set instance",
	Long: `devnet writes DIR/v0 … DIR/v(N-1), one home per validator of a new
validator-set instance, and DIR/trust.json, the instance's trust entry (its
ID, genesis hash and validator set: what "fractal check-proof --trust" and
"fractal peers add --entry" read). Each home holds the validator's
CometBFT consensus and node keys, CometBFT's config/config.toml (P2P and
RPC on 127.0.0.(K+1) only, the other validators as persistent peers), the
one genesis (chain ID, validators with power 10 each, block gas limit
max_block_gas) and the instance itself, made from the same validator set.
Each home's node-config.json puts the API of "fractal node" on
127.0.0.(K+1):BASE+128+K. Run each with "fractal --home DIR/vK node" (the
validator and its API) or "fractal --home DIR/vK validator run" (the
validator alone).

--trust adds a trust entry to every validator's trust file, so that the
instance imports that instance's exports; --zk copies a circuit key folder
so that the validators check shielded proofs.

--encrypted makes the validators the keyholders of the instance's threshold
key (k of n, k = ⌊2n/3⌋+1: 3 of 4): each home gets a keyholder home,
DIR/vK/keyholder, the validators run the DKG among themselves at genesis,
each party apart over its own loopback endpoint, and each home ends with its
own share only (DIR/vK/keyholder/epoch-1/share.key). The key, with its
transcript hash, goes into every instance and into the genesis app_state,
and vote extensions are on from height 1. A batch fixed at height F that
the validators' shares have not opened is closed as expired by the block
at height F + --encrypted-expiry-blocks (in the genesis app_state as
encrypted_expiry_blocks; decision 164).

--epoch-blocks N (with --encrypted) gives the key epochs: epoch b+1 may
start at height b·N+1 with a new key, made by a DKG among the validators in
the three windows of --dkg-window W heights before it (N must exceed 3W).
Each validator's own keyholder party deals, answers and justifies as DKG
transactions in its own mempool; every validator decides the key from the
chain at the last height of round 3; each home writes its own share of it
(DIR/vK/keyholder/epoch-E/share.key). The rules and the keyholder keys go
into the genesis app_state ("epochs"). Without --epoch-blocks the genesis is
what it was before epochs.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		out, _ := cmd.Flags().GetString("out")
		if out == "" {
			return errors.New("devnet: --out DIR is required")
		}
		o := validator.DevnetOptions{Instance: fractal.DefaultConfig()}
		o.Validators, _ = cmd.Flags().GetInt("validators")
		o.BasePort, _ = cmd.Flags().GetInt("base-port")
		o.TimeoutCommit, _ = cmd.Flags().GetDuration("timeout-commit")
		o.MempoolSize, _ = cmd.Flags().GetInt("mempool-size")
		o.ZK, _ = cmd.Flags().GetString("zk")
		o.Encrypted, _ = cmd.Flags().GetBool("encrypted")
		if cmd.Flags().Changed("encrypted-expiry-blocks") {
			o.EncryptedExpiryBlocks, _ = cmd.Flags().GetUint64("encrypted-expiry-blocks")
			if o.EncryptedExpiryBlocks == 0 {
				return errors.New("devnet: --encrypted-expiry-blocks must be at least 1")
			}
		}
		o.EpochBlocks, _ = cmd.Flags().GetUint64("epoch-blocks")
		if o.EpochBlocks > 0 {
			o.DKGWindow, _ = cmd.Flags().GetUint64("dkg-window")
		}
		files, _ := cmd.Flags().GetStringArray("trust")
		for _, f := range files {
			p, err := readTrustEntry(f)
			if err != nil {
				return err
			}
			o.Trust = append(o.Trust, p)
		}
		d, err := validator.WriteDevnet(out, o)
		if err != nil {
			return err
		}
		v := map[string]any{"instance": hex.EncodeToString(d.Trust.ID[:]), "validator_set": d.Trust.Validators,
			"homes": d.Homes, "rpc": d.RPC, "p2p": d.P2P, "api": d.API, "trust": out + "/" + validator.TrustFile}
		if d.ThresholdKey != nil {
			id := d.ThresholdKey.ID()
			v["threshold_key"] = hex.EncodeToString(id[:])
		}
		return emit(cmd, v, func(w io.Writer) {
			fmt.Fprintf(w, "instance %x: %d validators\n", d.Trust.ID, len(d.Homes))
			for i, h := range d.Homes {
				fmt.Fprintf(w, "  %s rpc %s api %s\n", h, d.RPC[i], d.API[i])
			}
			fmt.Fprintf(w, "trust entry %s/%s\n", out, validator.TrustFile)
			if d.ThresholdKey != nil {
				fmt.Fprintf(w, "threshold key %x: %d of %d, one share in each home\n", d.ThresholdKey.ID(), d.ThresholdKey.K, d.ThresholdKey.N)
			}
		})
	}),
}

// maxTrustEntry bounds a trust entry file: a validator set of 1,000.
const maxTrustEntry = 1 << 20

// readTrustEntry reads one trust entry (fractal peers self --json,
// a devnet's trust.json).
func readTrustEntry(path string) (fractal.Peer, error) {
	raw, err := inputfile.Read(path, maxTrustEntry)
	if err != nil {
		return fractal.Peer{}, err
	}
	var p fractal.Peer
	if err := json.Unmarshal(raw, &p); err != nil {
		// A genesis or a peers.json given here fails deep in the decoder: say what the file should be.
		return fractal.Peer{}, fmt.Errorf("%s is not a trust entry (what fractal peers self --json prints; fractal devnet writes DIR/trust.json): %w", path, err)
	}
	return p, nil
}

var validatorCmd = &cobra.Command{
	Use:   "validator",
	Short: "Run a validator of a validator-set instance and talk to one",
	Long: `validator runs one validator of a validator-set instance (a home written by
"fractal devnet") and hands transactions to a running one: its blocks come
from CometBFT's consensus among the validators, so transactions and code go
to a validator's mempool, never into the store directly.`,
}

var validatorRunCmd = &cobra.Command{
	Use:   "run [--log-level L]",
	Short: "Run the validator whose home is --home until SIGINT or SIGTERM",
	Long: `run opens the validator home given by --home (CometBFT replays the blocks
the instance lacks), joins its network and takes part in consensus until
SIGINT or SIGTERM (exit 0). A validator whose execution differs from the
others' stops with one line naming the height and the first transaction
whose result differs; a failing store stops it too (exit 1).`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error { return runValidator(cmd) }),
}

// runValidator runs the validator of --home until SIGINT or SIGTERM
// (validator run, and node on a validator's home).
func runValidator(cmd *cobra.Command) error {
	level, _ := cmd.Flags().GetString("log-level") // node has no such flag: the default
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return validator.Run(ctx, flagHome, validator.Options{Log: cmd.ErrOrStderr(), LogLevel: level, OnStart: func(n *validator.Node) {
		fmt.Fprintf(cmd.ErrOrStderr(), "validator %s of instance %x: running\n", flagHome, n.Instance().ID())
	}})
}

// dialValidator is the client of --rpc, or of --home's validator.
func dialValidator(cmd *cobra.Command) (*validator.Client, error) {
	addr, _ := cmd.Flags().GetString("rpc")
	if addr == "" {
		var err error
		if addr, err = validator.RPCAddress(flagHome); err != nil {
			return nil, fmt.Errorf("%w (give --rpc or a validator's --home)", err)
		}
	}
	return validator.Dial(addr)
}

// submitted hands raw to the validator and prints its ID.
func submitted(cmd *cobra.Command, raw []byte, what string, id [32]byte) error {
	c, err := dialValidator(cmd)
	if err != nil {
		return err
	}
	if err := c.Submit(cmd.Context(), raw); err != nil {
		return err
	}
	v := map[string]string{what: hex.EncodeToString(id[:]), "status": "admitted"}
	return emit(cmd, v, func(w io.Writer) { fmt.Fprintf(w, "admitted %s %x\n", what, id) })
}

var validatorSubmitCmd = &cobra.Command{
	Use:   "submit TX.json --key KEYFILE... [--encrypted [--node URL | --genesis FILE]] [--rpc URL]",
	Short: "Sign a transaction and hand it to a validator's mempool",
	Long: `submit signs a transaction in its JSON form as "fractal tx submit" does and
hands it to the validator (CometBFT's broadcast_tx_sync). It prints the
transaction ID once the validator admitted it (its check: form, limits,
signatures, not executed before, its inputs live now); a refusal is one line
with the reason. The validators then put it in a block in turn.

--encrypted seals the signed transaction to the validators' threshold key
in force, which the validator's node serves (--node URL, or the node
running on --home: with epochs the key changes at each epoch start, and a
payload sealed to an older key is refused), or else to the key the genesis
names (--genesis FILE, by default --home's config/genesis.json), and hands
in the encrypted transaction: its order is fixed in the block that
holds it, and it is opened and run first in the next block, with the
validators' shares from their precommits (decision 161). It prints the
payload ID ("fractal tfhe outcome" on a validator's home tells what became
of it once the validator is stopped).`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		tx, err := readSignedTx(cmd, args[0], localEstimate)
		if err != nil {
			return err
		}
		encrypted, _ := cmd.Flags().GetBool("encrypted")
		if url, _ := cmd.Flags().GetString("node"); url != "" && !encrypted {
			return errors.New("validator submit: --node only names the node whose key --encrypted seals to (a plain transaction goes through a node with fractal tx submit --node URL)")
		}
		if encrypted {
			pk, instance, err := sealingKey(cmd)
			if err != nil {
				return err
			}
			p, err := fractal.EncryptTx(pk, instance, tx)
			if err != nil {
				return err
			}
			raw := p.Encode()
			return submitted(cmd, fractal.EncryptedTx(raw), "payload", sha256.Sum256(raw))
		}
		return submitted(cmd, tx.Encode(), "tx", tx.ID())
	}),
}

// sealingKey is the threshold key validator submit --encrypted seals to:
// the genesis key --genesis names, else the key in force the validator's
// node serves (--node, or the node running on --home: after an epoch switch
// the validators refuse a payload sealed to an older key), else the key of
// --home's genesis.
func sealingKey(cmd *cobra.Command) (*tfhe.PublicKey, [32]byte, error) {
	gen, _ := cmd.Flags().GetString("genesis")
	url, _ := cmd.Flags().GetString("node")
	if gen != "" && url != "" {
		return nil, [32]byte{}, errors.New("validator submit: --genesis and --node both name the key to seal to: give one")
	}
	if gen == "" {
		n, err := nodeOf(cmd)
		if err != nil {
			return nil, [32]byte{}, err
		}
		if n != nil {
			return n.ThresholdKey(cmd.Context())
		}
		gen = filepath.Join(flagHome, "config", "genesis.json")
	}
	return validator.GenesisThresholdKey(gen)
}

var validatorDeployCmd = &cobra.Command{
	Use:   "deploy FILE.lua [--rpc URL]",
	Short: "Deploy code on a validator-set instance",
	Long: `deploy hands the code to a validator as a deploy transaction: every
validator stores it when the block holding it commits, and it can be used
from the next block on. It prints the code's hash.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		src, err := inputfile.Read(args[0], chain.MaxCodeBytes)
		if err != nil {
			return err
		}
		return submitted(cmd, fractal.DeployTx(src), "code", sha256.Sum256(src))
	}),
}

var validatorProveCmd = &cobra.Command{
	Use:   "prove --key STATEKEY --out FILE [--rpc URL]",
	Short: "Fetch a certified proof of what lives at a state key",
	Long: `prove asks a validator for the proof of what lives at a state key: the
state-tree path to the head block's state root, that block's manifest, and
the certificate of the validators' commit that carries its hash (it waits
for the next block, about one timeout_commit). "fractal check-proof FILE
--trust trust.json" checks it offline with only the validator set.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		text, _ := cmd.Flags().GetString("key")
		out, _ := cmd.Flags().GetString("out")
		if out == "" {
			return errors.New("validator prove: --out FILE is required")
		}
		k, err := notes.ParseStateKey(text)
		if err != nil {
			return err
		}
		c, err := dialValidator(cmd)
		if err != nil {
			return err
		}
		qp, err := c.Prove(cmd.Context(), k)
		if err != nil {
			return err
		}
		if err := writeNew(out, qp.Encode(), 0o644); err != nil {
			return err
		}
		v := map[string]any{"state_key": k.String(), "height": qp.Block.Height, "live": qp.Note != nil, "out": out}
		return emit(cmd, v, func(w io.Writer) {
			fmt.Fprintf(w, "proof against block %d, state root %x, certified: %s\n", qp.Block.Height, qp.Block.StateRoot, out)
		})
	}),
}

var validatorClaimCmd = &cobra.Command{
	Use:   "claim EXPORT_ID --out FILE [--rpc URL]",
	Short: "Fetch the certified claim of an export, for the destination's import",
	Long: `claim asks a validator for the claim of one export: the export record, the
manifest of the block that made it, the inclusion proof, and the certificate
of the validators' commit. The destination imports it with "fractal import
FILE" (a solo instance) or "fractal validator import FILE" (a validator set).`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		out, _ := cmd.Flags().GetString("out")
		if out == "" {
			return errors.New("validator claim: --out FILE is required")
		}
		id, err := parseHash(args[0])
		if err != nil {
			return err
		}
		c, err := dialValidator(cmd)
		if err != nil {
			return err
		}
		claim, err := c.Claim(cmd.Context(), id)
		if err != nil {
			return err
		}
		if err := writeNew(out, claim.Encode(), 0o644); err != nil {
			return err
		}
		v := map[string]any{"export": hex.EncodeToString(id[:]), "height": claim.Manifest.Height, "out": out}
		return emit(cmd, v, func(w io.Writer) {
			fmt.Fprintf(w, "claim of export %x (block %d): %s\n", id, claim.Manifest.Height, out)
		})
	}),
}

var validatorImportCmd = &cobra.Command{
	Use:   "import FILE --key KEYFILE [--rpc URL]",
	Short: "Import an export into a validator-set instance from its claim file",
	Long: `import builds the import transaction of a claim file ("fractal exports
claim" on a solo source, "fractal validator claim" on a validator set),
signs it with --key and hands it to a validator. Every validator checks the
claim against its trust file when it admits and executes it.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		c, err := readDecoded(args[0], phases.MaxExtradata, chain.DecodeClaim)
		if err != nil {
			return err
		}
		keyFile, _ := cmd.Flags().GetString("key")
		if keyFile == "" {
			return errors.New("validator import: --key KEYFILE is required")
		}
		k, err := keys.LoadKeyFile(keyFile)
		if err != nil {
			return err
		}
		tx := chain.ImportTx(c, k.Public())
		if err := tx.Sign(rand.Reader, k); err != nil {
			return err
		}
		return submitted(cmd, tx.Encode(), "tx", tx.ID())
	}),
}

// misbehaviorJSON is one validator misbehaviour record, for evidence.
type misbehaviorJSON struct {
	Type       string `json:"type"`
	Validator  string `json:"validator"`
	Power      int64  `json:"power"`
	Height     int64  `json:"height"`
	Time       string `json:"time"`
	TotalPower int64  `json:"total_power"`
	ReportedAt uint64 `json:"reported_at"`
}

// validatorEvidence lists a validator-set instance's misbehaviour records.
func validatorEvidence(cmd *cobra.Command, in *fractal.Instance) error {
	recs, err := in.Misbehavior()
	if err != nil {
		return err
	}
	out := make([]misbehaviorJSON, 0, len(recs))
	for _, r := range recs {
		m, err := abci.DecodeMisbehavior(r.Record)
		if err != nil {
			return err
		}
		out = append(out, misbehaviorJSON{Type: m.Type, Validator: hex.EncodeToString(m.Validator), Power: m.Power, Height: m.Height,
			Time: m.Time.Format(time.RFC3339Nano), TotalPower: m.TotalPower, ReportedAt: r.Height})
	}
	return emit(cmd, out, func(w io.Writer) {
		for _, m := range out {
			fmt.Fprintf(w, "%s by validator %s (power %d of %d) at height %d, reported in block %d\n", m.Type, m.Validator, m.Power, m.TotalPower, m.Height, m.ReportedAt)
		}
		fmt.Fprintf(w, "%d misbehaviours\n", len(out))
	})
}
