package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/keyholder"
	"github.com/fractalvm/fractal/tfhe/keyholder/release"
)

// The keyholder's verbs: make a keyholder's home, run its one party of the
// DKG against the other keyholders' processes, and release its decryption
// shares. docs/cli/keyholder.md.

func init() {
	f := keyholderDKGCmd.Flags()
	f.String("peers", "", "peers file: every keyholder's public key and address, in keyholder order")
	f.Int("n", 0, "number of keyholders (must match the peers file)")
	f.Int("k", 0, "keyholders needed to decrypt")
	f.String("instance", "", "ID of the instance the key is for (hex, as fractal init prints it)")
	f.Uint64("epoch", 1, "epoch of the key")
	f.Uint32("attempt", 1, "attempt number: run a failed DKG again with the next one")
	f.Duration("timeout", time.Minute, "how long each round waits for the other keyholders")
	f = keyholderServeCmd.Flags()
	f.String("node", "", "URL of the instance's node (http://HOST:PORT)")
	f.Uint64("epoch", 1, "epoch whose share to release")
	f.Duration("interval", time.Second, "how often to look for a batch waiting for shares while the node's event stream is down")
	f.Bool("once", false, "look once, release if there is a batch, and exit")
	keyholderCmd.AddCommand(keyholderInitCmd, keyholderShowCmd, keyholderDKGCmd, keyholderServeCmd)
	rootCmd.AddCommand(keyholderCmd)
}

var keyholderCmd = &cobra.Command{
	Use:   "keyholder",
	Short: "A keyholder's process: its home, its party of the DKG, its decryption shares",
	Long: `keyholder runs one keyholder of a threshold key, apart from the others: its
home folder (--home) holds its own key pair and, per epoch, its own share of
the key and nothing else. init makes the home, show prints its public key
and the shares it holds, dkg runs its party of the distributed key
generation against the other keyholders' processes, serve releases its
decryption shares for each encrypted batch an instance's node has fixed.`,
}

// keyholderHome is --home for the keyholder verbs, which must be given:
// the default names an instance, not a keyholder.
func keyholderHome(cmd *cobra.Command) (string, error) {
	if f := cmd.Flags().Lookup("home"); f == nil || !f.Changed {
		return "", fmt.Errorf("keyholder %s: --home DIR is required (the keyholder's home)", cmd.Name())
	}
	return flagHome, nil
}

var keyholderInitCmd = &cobra.Command{
	Use:   "init --home DIR",
	Short: "Make a keyholder's home with a new key pair and print its public key",
	Long: `init makes the folder DIR (mode 0700; it may exist if empty) and writes the
keyholder's new Fractal key pair to DIR/keyholder.key (mode 0600). It prints
the public key, which goes into the peers file every keyholder of a DKG
uses.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		dir, err := keyholderHome(cmd)
		if err != nil {
			return err
		}
		h, err := keyholder.Init(dir)
		if err != nil {
			return err
		}
		pub := h.Key.Public().String()
		return emit(cmd, map[string]any{"public_key": pub, "home": dir}, func(w io.Writer) {
			fmt.Fprintf(w, "keyholder key %s in %s\n", pub, dir)
		})
	},
}

type epochJSON struct {
	Epoch     uint64 `json:"epoch"`
	Key       string `json:"key_id"`
	Keyholder int    `json:"keyholder"`
	N         int    `json:"n"`
	K         int    `json:"k"`
}

var keyholderShowCmd = &cobra.Command{
	Use:   "show --home DIR",
	Short: "Print a keyholder's public key and the shares it holds",
	Long: `show prints the keyholder home's public key (the one its DKG messages and
shares are signed with) and, for every epoch-E folder holding a share, the epoch, the
threshold key's ID, this keyholder's number and k of n. A share itself is never
printed. --json gives public_key and epochs.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		dir, err := keyholderHome(cmd)
		if err != nil {
			return err
		}
		h, err := keyholder.OpenHome(dir)
		if err != nil {
			return err
		}
		epochs := []epochJSON{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			var n uint64
			if _, err := fmt.Sscanf(e.Name(), "epoch-%d", &n); err != nil || !e.IsDir() || e.Name() != fmt.Sprintf("epoch-%d", n) {
				continue
			}
			sk, err := h.Share(n)
			if err != nil {
				return err
			}
			id := sk.PK.ID()
			epochs = append(epochs, epochJSON{n, hex.EncodeToString(id[:]), sk.Index, sk.PK.N, sk.PK.K})
		}
		pub := h.Key.Public().String()
		return emit(cmd, map[string]any{"public_key": pub, "epochs": epochs}, func(w io.Writer) {
			fmt.Fprintf(w, "keyholder key %s\n", pub)
			for _, e := range epochs {
				fmt.Fprintf(w, "epoch %d: share %d of key %s (%d of %d)\n", e.Epoch, e.Keyholder, e.Key, e.K, e.N)
			}
		})
	},
}

var keyholderDKGCmd = &cobra.Command{
	Use:   "dkg --home DIR --peers FILE --n N --k K --instance ID [--epoch E] [--attempt A] [--timeout 1m]",
	Short: "Run this keyholder's party of the DKG against the other keyholders",
	Long: `dkg runs this keyholder's one party of the distributed key generation: it
serves an HTTP endpoint at its own address in the peers file, sends its
signed messages to every other keyholder's, and goes through the four
rounds (deals, responses, justifications, confirmations). Each round waits
--timeout for the others (the first also for them to start) and then goes
on without those it names. Messages of another session — another instance,
epoch, attempt, peers file or k — are refused.

At the end it writes DIR/epoch-E/share.key (its own share only, mode 0600),
public.key and transcript.bin, prints the key, the qualified dealers, the
keyholders holding a share and any keyholder left out and why, and exits.
Nothing is written when this keyholder ends without a share. Progress goes
to stderr, one line per round.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		dir, err := keyholderHome(cmd)
		if err != nil {
			return err
		}
		peersFile, _ := cmd.Flags().GetString("peers")
		instanceHex, _ := cmd.Flags().GetString("instance")
		if peersFile == "" || instanceHex == "" {
			return errors.New("keyholder dkg: --peers FILE and --instance ID are required")
		}
		instance, err := parseHash(instanceHex)
		if err != nil {
			return fmt.Errorf("keyholder dkg: --instance: %w", err)
		}
		c := keyholder.DKGConfig{Instance: instance}
		c.N, _ = cmd.Flags().GetInt("n")
		c.K, _ = cmd.Flags().GetInt("k")
		c.Epoch, _ = cmd.Flags().GetUint64("epoch")
		c.Attempt, _ = cmd.Flags().GetUint32("attempt")
		c.RoundTimeout, _ = cmd.Flags().GetDuration("timeout")
		if c.RoundTimeout <= 0 {
			return errors.New("keyholder dkg: --timeout must be positive")
		}
		h, err := keyholder.OpenHome(dir)
		if err != nil {
			return err
		}
		if c.Peers, err = keyholder.ReadPeers(peersFile); err != nil {
			return err
		}
		s, err := c.Session()
		if err != nil {
			return err
		}
		stderr := cmd.ErrOrStderr()
		self := s.Index(h.Key.Public())
		id := s.ID()
		fmt.Fprintf(stderr, "dkg: session %x (instance %x, epoch %d, attempt %d, %d of %d): keyholder %d\n",
			id[:8], instance[:8], c.Epoch, c.Attempt, c.K, c.N, self)
		c.Log = func(line string) { fmt.Fprintln(stderr, "dkg: "+line) }
		start := time.Now()
		res, err := h.RunDKG(cmd.Context(), c)
		if err != nil {
			return fmt.Errorf("keyholder dkg: %w", err)
		}
		return emitDKG(cmd, res.Key.ID(), res.Key.Origin.String(), res.Outcome, map[string]any{
			"keyholder": res.Self, "dir": res.Dir, "seconds": time.Since(start).Seconds()},
			func(w io.Writer) {
				fmt.Fprintf(w, "keyholder %d holds its share in %s\n", res.Self, res.Dir)
				fmt.Fprintf(w, "took %v\n", time.Since(start).Round(time.Millisecond))
			})
	},
}

// emitDKG prints a DKG's outcome (from a keyholder's run or a transcript),
// with extra fields and lines.
func emitDKG(cmd *cobra.Command, keyID [32]byte, origin string, o *dkg.Outcome, extra map[string]any, lines func(io.Writer)) error {
	s := o.Session
	faults := toFaultsJSON(o.Faults)
	v := map[string]any{"key_id": hex.EncodeToString(keyID[:]), "origin": origin, "n": s.N(), "k": s.K,
		"instance": hex.EncodeToString(s.Instance[:]), "epoch": s.Epoch, "attempt": s.Attempt,
		"transcript": hex.EncodeToString(o.Hash[:]), "qualified": o.Qual, "holders": o.Holders,
		"confirmed": o.Confirmed, "faults": faults}
	for k, x := range extra {
		v[k] = x
	}
	return emit(cmd, v, func(w io.Writer) {
		fmt.Fprintf(w, "key %x (%s), %d of %d, instance %x epoch %d\n", keyID, origin, s.K, s.N(), s.Instance, s.Epoch)
		fmt.Fprintf(w, "transcript %x: dealers %s; holders %s; confirmed by %s\n", o.Hash, intList(o.Qual), intList(o.Holders), intList(o.Confirmed))
		for _, f := range o.Faults {
			fmt.Fprintf(w, "keyholder %d: %s\n", f.Keyholder, f.Reason)
		}
		if lines != nil {
			lines(w)
		}
	})
}

var keyholderServeCmd = &cobra.Command{
	Use:   "serve --home DIR --node URL [--epoch E] [--interval 1s] [--once]",
	Short: "Release this keyholder's decryption shares for each batch a node has fixed",
	Long: `serve follows the encrypted batch that the instance's node (fractal node, at
--node) has waiting for keyholder shares and hands in this keyholder's
decryption shares, with their proofs, made from its own share of epoch E
(DIR/epoch-E/share.key) and nothing else. Before any share leaves it checks
the batch record: the executor's signature, that the batch is of the
instance the key was made for and sealed to this key, that the payloads are
those the record names; and it logs the batch in DIR/epoch-E/released.log,
so that it never answers two different batches under one number, nor
another executor than the first. A refused batch stays waiting for other
keyholders (fractal tfhe pending shows who is not yet in).

It follows the node's event stream (Watch) and looks as soon as the node
fixes a batch or a batch changes; while the stream is down it looks every
--interval (backing off up to 30s while the node fails) and tries the
stream again. It prints a line on stderr whenever what it finds changes;
SIGINT or SIGTERM stops it (exit 0). --once looks once, prints the result
on stdout and exits (1 when the batch was refused).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		dir, err := keyholderHome(cmd)
		if err != nil {
			return err
		}
		url, _ := cmd.Flags().GetString("node")
		if url == "" {
			return errors.New("keyholder serve: --node URL is required")
		}
		epoch, _ := cmd.Flags().GetUint64("epoch")
		interval, _ := cmd.Flags().GetDuration("interval")
		once, _ := cmd.Flags().GetBool("once")
		if interval <= 0 {
			return errors.New("keyholder serve: --interval must be positive")
		}
		h, err := keyholder.OpenHome(dir)
		if err != nil {
			return err
		}
		k, err := release.Open(h, epoch)
		if err != nil {
			return err
		}
		node, err := release.DialAPI(url)
		if err != nil {
			return err
		}
		if once {
			st, err := k.Step(cmd.Context(), node)
			if err != nil {
				return fmt.Errorf("keyholder serve: %w", err)
			}
			v := map[string]any{"state": []string{"idle", "released", "already in"}[st.State]}
			if st.Batch != nil {
				v["batch"], v["shares"], v["needed"], v["not_yet"] = st.Batch.Number, st.Shares, st.Needed, st.NotYet(k.Share.PK.N)
			}
			return emit(cmd, v, func(w io.Writer) { fmt.Fprintln(w, k.Describe(st, nil)) })
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		stderr := cmd.ErrOrStderr()
		fmt.Fprintf(stderr, "serve: keyholder %d of key %x (epoch %d), node %s\n", k.Share.Index, k.Share.PK.ID(), epoch, node.URL)
		k.Serve(ctx, node, interval, func(line string) { fmt.Fprintln(stderr, "serve: "+line) })
		return nil
	},
}

// faultJSON is a DKG fault for --json.
type faultJSON struct {
	Keyholder int    `json:"keyholder"`
	Reason    string `json:"reason"`
}

func toFaultsJSON(fs []dkg.Fault) []faultJSON {
	out := []faultJSON{}
	for _, f := range fs {
		out = append(out, faultJSON{f.Keyholder, f.Reason})
	}
	return out
}
