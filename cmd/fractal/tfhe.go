package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/keyholder"
)

// maxTfheFile bounds every tfhe file read (keys, shares, ciphertexts, share
// batches): the largest is a payload ciphertext, its sealed body with the
// context and a few hundred bytes of header, key encapsulation and proof.
const maxTfheFile = tfhe.MaxBody + tfhe.MaxContext + 4<<10

func init() {
	f := tfheSetupCmd.Flags()
	f.Int("n", 0, "number of keyholders")
	f.Int("k", 0, "keyholders needed to decrypt")
	f.String("out", "", "folder to create (refused if it exists)")
	f.Bool("dev-dealer", false, "make every share in this process (DEVELOPMENT ONLY): required")
	f.Bool("trusted-dealer", false, "with --dev-dealer: draw the key at once instead of running the DKG (TESTS ONLY)")

	tfheCheckTranscriptCmd.Flags().String("key", "", "also check that the transcript makes this public key file")
	tfheCheckTranscriptCmd.Flags().Bool("chain", false, "a transcript a validator set's chain carried (fractal validator epochs): no confirmations, the chain agreed")

	f = tfheEncryptCmd.Flags()
	f.String("key", "", "public key file")
	f.Int64("counter", -1, "encrypt this integer (0 ≤ N < 2^32) as a counter")
	f.String("in", "", "seal this file's bytes as a payload")
	f.String("context", "", "context bound into a payload (e.g. chain and height)")
	f.String("out", "", "ciphertext file to write")

	f = tfheEvalCmd.Flags()
	f.String("key", "", "public key file")
	f.String("circuit", "", "sum, add or mul:N")
	f.String("out", "", "ciphertext file to write")

	f = tfhePartdecCmd.Flags()
	f.String("share", "", "keyholder share file")
	f.String("out", "", "decryption share file to write")

	f = tfheCombineCmd.Flags()
	f.String("key", "", "public key file")
	f.String("ct", "", "ciphertext file")
	f.String("out", "", "write a payload's plaintext to this file instead of stdout")

	tfheCmd.AddCommand(tfheSetupCmd, tfheCheckTranscriptCmd, tfheEncryptCmd, tfheEvalCmd, tfhePartdecCmd, tfheCombineCmd)
	rootCmd.AddCommand(tfheCmd)
}

var tfheCmd = &cobra.Command{
	Use:   "tfhe",
	Short: "Threshold encryption: key generation, encryption, Eval and k-of-n decryption",
	Long: `tfhe runs Fractal's threshold encryption (the seed's TFHE interface) on
files: setup makes a key shared by n keyholders in one process, for
development (keyholders apart run fractal keyholder dkg); check-transcript
checks a DKG's transcript; encrypt makes counter or payload ciphertexts; eval
sums counters; partdec makes one keyholder's decryption share with its proof;
combine checks k shares and decrypts. All files are binary, in the formats
of docs/formats/tfhe.md.`,
}

var tfheSetupCmd = &cobra.Command{
	Use:   "setup --dev-dealer --n N --k K --out DIR [--trusted-dealer]",
	Short: "Make a key and every keyholder's share in this process (DEVELOPMENT ONLY)",
	Long: `setup is the development dealer: it runs the DKG among N keyholders inside
this process, which therefore holds every share and could decrypt
everything, and writes DIR/public.key, DIR/transcript.bin and
DIR/keyholder-I/share.key (mode 0600) for each keyholder I that ends with a
share. The key says origin dev-dealer. It refuses to run without
--dev-dealer and prints a warning: keyholders that must not see each
other's shares run fractal keyholder dkg, each in its own process.

--trusted-dealer draws the key at once instead (tests only; the key says
trusted-dealer). The folder is written under a temporary name and renamed
at the end, so a failed setup leaves nothing behind.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		n, _ := cmd.Flags().GetInt("n")
		k, _ := cmd.Flags().GetInt("k")
		out, _ := cmd.Flags().GetString("out")
		devDealer, _ := cmd.Flags().GetBool("dev-dealer")
		trusted, _ := cmd.Flags().GetBool("trusted-dealer")
		if !devDealer {
			return errors.New("tfhe setup: this would make every keyholder's share in one process; keyholders apart run fractal keyholder dkg (docs/cli/keyholder.md); pass --dev-dealer for development")
		}
		if out == "" {
			return errors.New("tfhe setup: --out DIR is required")
		}
		if err := keyholder.CheckNew(out); err != nil {
			return fmt.Errorf("tfhe setup: %w", err)
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: development dealer: this process makes every share and could decrypt everything; never use this key for real transactions")
		var progress func(done, total int)
		if !trusted {
			if bar := stderrBar(4*n, "dkg"); bar != nil {
				progress = func(done, _ int) { _ = bar.Set(done) }
				defer bar.Finish()
			}
		}
		s, err := keyholder.Generate(cmd.Context(), n, k, trusted, progress)
		if err != nil {
			return err
		}
		if err := s.WriteFolder(out); err != nil {
			return fmt.Errorf("tfhe setup: %w", err)
		}
		pk, holders := s.Key, s.Holders()
		faults := []faultJSON{}
		if s.DKG != nil {
			faults = toFaultsJSON(s.DKG.Faults)
		}
		id := pk.ID()
		v := map[string]any{"key_id": hex.EncodeToString(id[:]), "origin": pk.Origin.String(),
			"n": pk.N, "k": pk.K, "keyholders": holders, "faults": faults, "out": out}
		return emit(cmd, v, func(w io.Writer) {
			fmt.Fprintf(w, "key %x (%s), %d of %d\n", id, pk.Origin, pk.K, pk.N)
			fmt.Fprintf(w, "keyholders with a share: %v\n", holders)
			for _, f := range faults {
				fmt.Fprintf(w, "keyholder %d: %s\n", f.Keyholder, f.Reason)
			}
		})
	},
}

var tfheCheckTranscriptCmd = &cobra.Command{
	Use:   "check-transcript FILE [--key FILE] [--chain]",
	Short: "Check a DKG transcript and print the key it makes",
	Long: `check-transcript reads a DKG transcript (transcript.bin, written by
fractal keyholder dkg or tfhe setup --dev-dealer) and checks it from nothing
but itself: every message's signature and session, the DKG's rules applied
to the deals, responses and justifications, and the confirmations of at
least k keyholders holding a share. It prints the session, the key, the
dealers whose deals make it, the keyholders holding a share, and every
keyholder left out and why. With --key it also checks that the transcript
makes that public key. With --chain the transcript is an epoch DKG's from a
validator set's chain (fractal validator epochs --transcript-out): the chain
is the agreement, so it holds no confirmations. A transcript that fails is
refused with the reason.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		t, err := readDecoded(args[0], dkg.MaxTranscript, dkg.DecodeTranscript)
		if err != nil {
			return err
		}
		check, checkKey := dkg.Check, tfhe.CheckTranscript
		onChain, _ := cmd.Flags().GetBool("chain")
		if onChain {
			check, checkKey = dkg.CheckChain, tfhe.CheckChainTranscript
		}
		o, err := check(t)
		if err != nil && !onChain && len(t.Confirmations) == 0 {
			// A chain's transcript holds no confirmations: say which flag reads it.
			return fmt.Errorf("%s: %w (a transcript with no confirmations: one from a validator set's chain, fractal validator epochs --transcript-out, is checked with --chain)", args[0], err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		origin := tfhe.OriginDKG
		if kf, _ := cmd.Flags().GetString("key"); kf != "" {
			pk, err := readDecoded(kf, maxTfheFile, tfhe.DecodePublicKey)
			if err != nil {
				return err
			}
			if _, err := checkKey(pk, t); err != nil {
				return fmt.Errorf("%s: %w", kf, err)
			}
			origin = pk.Origin
		}
		pk, err := tfhe.KeyFromDKG(origin, o)
		if err != nil {
			return err
		}
		return emitDKG(cmd, pk.ID(), origin.String(), o, nil, nil)
	},
}

func ctKind(ct tfhe.Ciphertext) string {
	if _, ok := ct.(*tfhe.Counter); ok {
		return "counter"
	}
	return "payload"
}

func emitCiphertext(cmd *cobra.Command, ct tfhe.Ciphertext, out string) error {
	id := ct.ID()
	v := map[string]any{"id": hex.EncodeToString(id[:]), "kind": ctKind(ct), "out": out}
	return emit(cmd, v, func(w io.Writer) { fmt.Fprintf(w, "%s %x\n", ctKind(ct), id) })
}

func required(cmd *cobra.Command, names ...string) ([]string, error) {
	var vals []string
	for _, n := range names {
		v, _ := cmd.Flags().GetString(n)
		if v == "" {
			return nil, fmt.Errorf("tfhe %s: --%s is required", cmd.Name(), n)
		}
		vals = append(vals, v)
	}
	return vals, nil
}

var tfheEncryptCmd = &cobra.Command{
	Use:   "encrypt --key FILE (--counter N | --in FILE [--context TEXT]) --out FILE",
	Short: "Encrypt an integer as a counter, or seal a file as a payload",
	Long: `encrypt writes a ciphertext for the public key. With --counter N it is an
exponential-ElGamal counter (0 ≤ N < 2^32) that eval can add up. With --in
FILE it is a payload: the file's bytes under AES-256-GCM with a threshold key
encapsulation and the sender's proof of knowledge, bound to --context. It
prints the ciphertext's kind and ID.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		v, err := required(cmd, "key", "out")
		if err != nil {
			return err
		}
		pk, err := readDecoded(v[0], maxTfheFile, tfhe.DecodePublicKey)
		if err != nil {
			return err
		}
		counter, _ := cmd.Flags().GetInt64("counter")
		in, _ := cmd.Flags().GetString("in")
		ctx, _ := cmd.Flags().GetString("context")
		var ct tfhe.Ciphertext
		switch {
		case (counter >= 0) == (in != ""):
			return errors.New("tfhe encrypt: give exactly one of --counter N and --in FILE")
		case in != "":
			b, err := inputfile.Read(in, tfhe.MaxBody-16)
			if err != nil {
				return err
			}
			ct, err = tfhe.Seal(pk, b, []byte(ctx))
			if err != nil {
				return err
			}
		default:
			if ctx != "" {
				return errors.New("tfhe encrypt: --context applies to payloads only")
			}
			ct, err = tfhe.Encrypt(pk, uint64(counter))
			if err != nil {
				return err
			}
		}
		if err := writeNew(v[1], ct.Encode(), 0o644); err != nil {
			return fmt.Errorf("tfhe encrypt: %w", err)
		}
		return emitCiphertext(cmd, ct, v[1])
	},
}

var tfheEvalCmd = &cobra.Command{
	Use:   "eval --key FILE --circuit C --out FILE CIPHERTEXT...",
	Short: "Apply a linear circuit (sum, add, mul:N) to counter ciphertexts",
	Long: `eval computes a circuit on ciphertexts without decrypting them: sum (any
number of counters), add (two counters) or mul:N (one counter times the
public integer N). Any other circuit, and any payload input, is refused with
"unsupported circuit". The result is a counter ciphertext; one above 2^32
cannot be decrypted.`,
	Args: cobra.MinimumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		v, err := required(cmd, "key", "circuit", "out")
		if err != nil {
			return err
		}
		pk, err := readDecoded(v[0], maxTfheFile, tfhe.DecodePublicKey)
		if err != nil {
			return err
		}
		c, err := tfhe.ParseCircuit(v[1])
		if err != nil {
			return err
		}
		var in []tfhe.Ciphertext
		for _, a := range args {
			ct, err := readDecoded(a, maxTfheFile, tfhe.DecodeCiphertext)
			if err != nil {
				return err
			}
			in = append(in, ct)
		}
		out, err := tfhe.Eval(pk, c, in...)
		if err != nil {
			return err
		}
		if err := writeNew(v[2], out.Encode(), 0o644); err != nil {
			return fmt.Errorf("tfhe eval: %w", err)
		}
		return emitCiphertext(cmd, out, v[2])
	},
}

var tfhePartdecCmd = &cobra.Command{
	Use:   "partdec --share FILE --out FILE CIPHERTEXT",
	Short: "Make this keyholder's decryption share of a ciphertext, with its proof",
	Long: `partdec reads a keyholder's share file and a ciphertext and writes the
keyholder's decryption share with a DLEQ proof bound to the key, the
ciphertext and the keyholder's index. A payload whose proof of knowledge
fails (an altered ciphertext) gets no share.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		v, err := required(cmd, "share", "out")
		if err != nil {
			return err
		}
		sk, err := readDecoded(v[0], maxTfheFile, tfhe.DecodeKeyShare)
		if err != nil {
			return err
		}
		ct, err := readDecoded(args[0], maxTfheFile, tfhe.DecodeCiphertext)
		if err != nil {
			return err
		}
		s, err := tfhe.PartDec(sk, ct)
		if err != nil {
			return err
		}
		if err := writeNew(v[1], s.Encode(), 0o644); err != nil {
			return fmt.Errorf("tfhe partdec: %w", err)
		}
		id := ct.ID()
		return emit(cmd, map[string]any{"keyholder": s.Index, "ciphertext": hex.EncodeToString(id[:]), "out": v[1]},
			func(w io.Writer) { fmt.Fprintf(w, "share of keyholder %d for %x\n", s.Index, id) })
	},
}

var tfheCombineCmd = &cobra.Command{
	Use:   "combine --key FILE --ct FILE SHARE...",
	Short: "Check k or more decryption shares and decrypt",
	Long: `combine verifies every decryption share against the public key and the
ciphertext and, with at least k valid shares from distinct keyholders,
decrypts: a counter prints its integer, a payload prints its bytes (or writes
them to --out). A bad share is refused with the keyholder at fault named.`,
	Args: cobra.MinimumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		v, err := required(cmd, "key", "ct")
		if err != nil {
			return err
		}
		pk, err := readDecoded(v[0], maxTfheFile, tfhe.DecodePublicKey)
		if err != nil {
			return err
		}
		ct, err := readDecoded(v[1], maxTfheFile, tfhe.DecodeCiphertext)
		if err != nil {
			return err
		}
		var ss []*tfhe.Share
		for _, a := range args {
			s, err := readDecoded(a, maxTfheFile, tfhe.DecodeShare)
			if err != nil {
				return err
			}
			ss = append(ss, s)
		}
		switch c := ct.(type) {
		case *tfhe.Counter:
			m, err := tfhe.DecryptCounter(pk, c, ss)
			if err != nil {
				return err
			}
			return emit(cmd, map[string]any{"kind": "counter", "value": m}, func(w io.Writer) { fmt.Fprintln(w, m) })
		case *tfhe.Payload:
			pt, err := tfhe.Open(pk, c, ss)
			if err != nil {
				return err
			}
			if out, _ := cmd.Flags().GetString("out"); out != "" {
				if err := writeNew(out, pt, 0o600); err != nil {
					return fmt.Errorf("tfhe combine: %w", err)
				}
				return emit(cmd, map[string]any{"kind": "payload", "bytes": len(pt), "out": out},
					func(w io.Writer) { fmt.Fprintf(w, "%d bytes to %s\n", len(pt), out) })
			}
			return emit(cmd, map[string]any{"kind": "payload", "plaintext": string(pt)}, func(w io.Writer) { w.Write(pt) })
		}
		return errors.New("tfhe combine: unknown ciphertext kind")
	},
}
