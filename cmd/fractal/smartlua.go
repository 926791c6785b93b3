package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/smartlua"
	"github.com/fractalvm/fractal/vp"
)

func init() {
	for _, c := range []*cobra.Command{slInitCmd, slApplyCmd, slVerifyCmd, slShowCmd} {
		c.Flags().String("dir", "", "chain store folder (required)")
	}
	for _, c := range []*cobra.Command{slInitCmd, slApplyCmd} {
		c.Flags().String("fragment", "", "Lua fragment file (required)")
		c.Flags().StringArray("key", nil, "key file of a signer (repeatable; order is the order of `signers`)")
	}
	slApplyCmd.Flags().String("state", "", "hash of the previous state, lower-case hex (required)")
	smartluaCmd.AddCommand(slInitCmd, slApplyCmd, slVerifyCmd, slShowCmd)
	rootCmd.AddCommand(smartluaCmd)
}

var smartluaCmd = &cobra.Command{
	Use:   "smartlua",
	Short: "Make and verify Smart Lua chains: hashed, signed, re-executable Lua states",
	Long: `smartlua keeps a chain of Lua states in a folder. Each state is made by a
transition: a Lua fragment run on the previous state (or, for an initial
state, on a fresh global table), signed by the keys listed with it. The
fragment sees the signers' public keys (standard base64) in the global
array ` + "`signers`" + `. Only an initial state may define globals; later fragments
change state through the functions it defined.

State hashes are printed and read as 64 lower-case hex digits. Key files are
those of 'fractal keys gen'; a file holding a standard-base64 private key
(such as the Smart Lua seed's) works too.`,
}

// stepJSON is what init and apply print with --json.
type stepJSON struct {
	Hash    string   `json:"hash"`
	Prev    string   `json:"prev,omitempty"`
	Signers []string `json:"signers"`
	Values  []any    `json:"values"`
	Log     []string `json:"log"`
	Gas     uint64   `json:"gas"`
}

var slInitCmd = &cobra.Command{
	Use:   "init --dir DIR --fragment F.lua [--key KEYFILE]...",
	Short: "Make an initial state from a fragment run on a fresh global table",
	Long: `init runs the fragment on a fresh global table, where it may define globals,
signs the resulting state's hash with each --key, stores the state in --dir
and prints its hash (lower-case hex), the fragment's return values (as JSON,
tab-separated, after "return:") and each line it printed (after "print:").
A fragment that fails stores nothing and exits non-zero.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error { return runStep(cmd, false) },
}

var slApplyCmd = &cobra.Command{
	Use:   "apply --dir DIR --state HASH --fragment F.lua [--key KEYFILE]...",
	Short: "Make a successor of a state by running a fragment on it",
	Long: `apply verifies the state named by --state (lower-case hex) and its
ancestry, runs the fragment on that state as deserialized, with read-only
globals and ` + "`signers`" + ` holding the public keys of the --key files in order,
signs the new state's hash with each key and stores it. It prints the new
hash (lower-case hex), the return values (as JSON, tab-separated, after
"return:") and each printed line (after "print:").

A fragment that errors or fails an assert, assigns a global, or would fork
the chain (the state already has a different successor) stores nothing and
exits non-zero.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error { return runStep(cmd, true) },
}

func openChain(cmd *cobra.Command) (*smartlua.Store, *smartlua.Verifier, error) {
	dir, _ := cmd.Flags().GetString("dir")
	if dir == "" {
		return nil, nil, fmt.Errorf("smartlua %s: --dir DIR is required", cmd.Name())
	}
	st, err := smartlua.OpenStore(dir)
	if err != nil {
		return nil, nil, err
	}
	shown.load(dir)
	return st, smartlua.NewVerifier(vp.NewPool(), st.Get), nil
}

func runStep(cmd *cobra.Command, later bool) error {
	name := "smartlua " + cmd.Name()
	fragPath, _ := cmd.Flags().GetString("fragment")
	if fragPath == "" {
		return fmt.Errorf("%s: --fragment FILE is required", name)
	}
	var prev *smartlua.Hash
	if later {
		s, _ := cmd.Flags().GetString("state")
		if s == "" {
			return fmt.Errorf("%s: --state HASH is required", name)
		}
		h, err := smartlua.ParseHash(s)
		if err != nil {
			return fmt.Errorf("%s: --state: %w", name, err)
		}
		prev = &h
	}
	frag, err := inputfile.Read(fragPath, vp.MaxSource)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	paths, _ := cmd.Flags().GetStringArray("key")
	var signers []keys.PrivateKey
	for _, p := range paths {
		k, err := keys.LoadKeyFile(p)
		if err != nil {
			return err
		}
		signers = append(signers, k)
	}
	store, v, err := openChain(cmd)
	if err != nil {
		return err
	}
	shown.addCode(frag, fragPath)
	rec, res, err := smartlua.Apply(store, v, rand.Reader, prev, frag, signers)
	if err != nil {
		return err
	}
	dir, _ := cmd.Flags().GetString("dir")
	if err := recordName(dir, frag, fragPath); err != nil {
		return fmt.Errorf("%s: state %s stored, but the fragment's file name was not recorded: %w", name, rec.Hash, err)
	}
	out := stepJSON{Hash: rec.Hash.String(), Values: res.Values, Log: res.Log, Gas: res.GasUsed, Signers: []string{}}
	if prev != nil {
		out.Prev = prev.String()
	}
	for _, k := range rec.Transition.Keys {
		out.Signers = append(out.Signers, k.String())
	}
	if out.Values == nil {
		out.Values = []any{}
	}
	if out.Log == nil {
		out.Log = []string{}
	}
	vals := make([]string, len(res.Values))
	for i, val := range res.Values {
		b, err := json.Marshal(val)
		if err != nil {
			return fmt.Errorf("%s: return value %d: %w", name, i+1, err)
		}
		vals[i] = string(b)
	}
	return emit(cmd, out, func(w io.Writer) {
		fmt.Fprintln(w, out.Hash)
		if len(vals) > 0 {
			fmt.Fprintln(w, "return: "+strings.Join(vals, "\t"))
		}
		for _, l := range res.Log {
			fmt.Fprintln(w, "print: "+l)
		}
	})
}

// verifyJSON is what verify prints with --json.
type verifyJSON struct {
	Verified int    `json:"verified"`
	Hash     string `json:"hash,omitempty"`
}

var slVerifyCmd = &cobra.Command{
	Use:   "verify --dir DIR [HASH]",
	Short: "Verify one state and its ancestry, or every state in the store",
	Long: `verify checks the state named by HASH (lower-case hex) and every state
before it, or with no HASH every state in --dir: each listed key's signature
of the state hash, the previous state, re-execution of the fragment on the
previous state to the same serialized state and hash, the successor index,
and that no state has two different successors (a fork, reported with both).
It exits non-zero naming the first state that fails.`,
	Args: cobra.MaximumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		store, v, err := openChain(cmd)
		if err != nil {
			return err
		}
		out := verifyJSON{}
		if len(args) == 1 {
			h, err := smartlua.ParseHash(args[0])
			if err != nil {
				return err
			}
			if err := v.Verify(h); err != nil {
				return err
			}
			out.Hash, out.Verified = h.String(), 1
		} else {
			if out.Verified, err = smartlua.VerifyStore(store, v, progressBar(cmd, "verifying")); err != nil {
				return err
			}
		}
		return emit(cmd, out, func(w io.Writer) {
			if out.Hash != "" {
				fmt.Fprintf(w, "ok: %s and its ancestry verified\n", out.Hash)
				return
			}
			fmt.Fprintf(w, "ok: %d states verified\n", out.Verified)
		})
	},
}

// showJSON is what show prints with --json.
type showJSON struct {
	Hash       string        `json:"hash"`
	Prev       string        `json:"prev,omitempty"`
	Signers    []string      `json:"signers"`
	Signatures []string      `json:"signatures"`
	Fragment   string        `json:"fragment"`
	State      *vp.StateView `json:"state"`
}

var slShowCmd = &cobra.Command{
	Use:   "show --dir DIR HASH",
	Short: "Print a state's transition, globals and reachable values",
	Long: `show prints the state named by HASH (lower-case hex): its previous state,
signers, fragment, and every table and function reachable from its globals,
values written as Lua literals (table#N and function#N name objects,
lib:NAME a library value). show does not verify; use verify for that.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		store, _, err := openChain(cmd)
		if err != nil {
			return err
		}
		h, err := smartlua.ParseHash(args[0])
		if err != nil {
			return err
		}
		rec, err := store.Get(h)
		if err != nil {
			return err
		}
		view, err := vp.ShowState(rec.State)
		if err != nil {
			return fmt.Errorf("smartlua show: %s: %w", h, err)
		}
		out := showJSON{Hash: h.String(), Fragment: string(rec.Transition.Fragment), State: view, Signers: []string{}, Signatures: []string{}}
		if p := rec.Transition.Prev; p != nil {
			out.Prev = p.String()
		}
		for _, k := range rec.Transition.Keys {
			out.Signers = append(out.Signers, k.String())
		}
		for _, s := range rec.Sigs {
			out.Signatures = append(out.Signatures, keys.FormatSignature(s))
		}
		return emit(cmd, out, func(w io.Writer) {
			fmt.Fprintf(w, "state %s\n", out.Hash)
			if out.Prev != "" {
				fmt.Fprintf(w, "prev %s\n", out.Prev)
			} else {
				fmt.Fprintln(w, "prev none (initial state)")
			}
			for _, s := range out.Signers {
				fmt.Fprintf(w, "signer %s\n", s)
			}
			fmt.Fprintln(w, "fragment:")
			for _, l := range strings.Split(strings.TrimRight(out.Fragment, "\n"), "\n") {
				fmt.Fprintln(w, "  | "+l)
			}
			view.WriteText(w)
		})
	},
}
