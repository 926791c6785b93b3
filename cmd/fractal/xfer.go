package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
)

// Cross-instance transfer verbs: the trust file (peers), the outbox
// (exports), claim files for instances that cannot open each other's
// folders (exports claim, import) and the relayer. docs/cli/cross-instance.md.

func init() {
	peersAddCmd.Flags().String("id", "", "the peer's instance ID (64 hex digits)")
	peersAddCmd.Flags().String("genesis", "", "the hash of the peer's genesis block (64 hex digits)")
	peersAddCmd.Flags().StringArray("key", nil, "an executor public key of the peer, standard base64 (repeatable)")
	peersAddCmd.Flags().String("from", "", "read id, genesis and key from the local instance in this folder")
	exportsCmd.Flags().String("to", "", "only exports to this instance ID")
	relayCmd.Flags().String("from", "", "the source: a home folder, or a node's URL")
	relayCmd.Flags().String("to", "", "the destination: a home folder, or a node's URL")
	relayCmd.Flags().String("key", "", "key file that signs the import transactions (default: the destination's executor key)")
	exportsClaimCmd.Flags().String("out", "", "the claim file to write (must not exist)")
	importCmd.Flags().String("key", "", "key file that signs the import transaction (default: this instance's executor key)")
	peersCmd.AddCommand(peersAddCmd, peersListCmd, peersSelfCmd)
	exportsCmd.AddCommand(exportsClaimCmd)
	rootCmd.AddCommand(peersCmd, exportsCmd, relayCmd, importCmd)
}

var peersCmd = &cobra.Command{
	Use:   "peers",
	Short: "Manage the trust file: instances whose exports this one imports",
	Long: `peers manages the trust file (peers.json in the home folder): for each trusted
instance its ID, the hash of its genesis block and the executor keys whose signed
manifests are believed. Entries are only added to.`,
}

var peersAddCmd = &cobra.Command{
	Use:   "add (--id HEX --genesis HEX --key KEY... | --from DIR)",
	Short: "Trust another instance's signed manifests",
	Long: `add records a trusted instance: its ID, its genesis block hash and one or more
executor public keys (what "fractal peers self" prints on that instance). With
--from it reads them from a local instance folder. Adding keys to a known peer
keeps the old ones; a different genesis hash for a known ID, and this instance's
own ID, are refused.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		var p fractal.Peer
		if from, _ := cmd.Flags().GetString("from"); from != "" {
			other, err := openWaiting(from)
			if err != nil {
				return err
			}
			p, err = other.TrustEntry()
			other.Close()
			if err != nil {
				return err
			}
		} else {
			id, _ := cmd.Flags().GetString("id")
			gen, _ := cmd.Flags().GetString("genesis")
			ks, _ := cmd.Flags().GetStringArray("key")
			var err error
			if p.ID, err = parseHash(id); err != nil {
				return fmt.Errorf("--id: %w", err)
			}
			if p.Genesis, err = parseHash(gen); err != nil {
				return fmt.Errorf("--genesis: %w", err)
			}
			for _, k := range ks {
				pk, err := keys.ParsePublicKey(k)
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				p.Keys = append(p.Keys, pk)
			}
		}
		return withInstance(func(in *fractal.Instance) error {
			got, err := in.AddPeer(p)
			if err != nil {
				return err
			}
			return emit(cmd, got, func(w io.Writer) { printPeer(w, *got) })
		})
	}),
}

var peersListCmd = &cobra.Command{
	Use:   "list",
	Short: "List the trusted instances",
	Long:  `list prints every entry of the trust file, sorted by instance ID.`,
	Args:  cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		return withInstance(func(in *fractal.Instance) error {
			ps, err := in.Peers()
			if err != nil {
				return err
			}
			return emitPeers(cmd, ps)
		})
	}),
}

var peersSelfCmd = &cobra.Command{
	Use:   "self",
	Short: "Print this instance's own entry, for another instance's peers add",
	Long:  `self prints this instance's ID, genesis block hash and executor key.`,
	Args:  cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		return withInstance(func(in *fractal.Instance) error {
			p, err := in.TrustEntry()
			if err != nil {
				return err
			}
			return emit(cmd, p, func(w io.Writer) { printPeer(w, p) })
		})
	}),
}

// emitPeers prints the trust file's entries.
func emitPeers(cmd *cobra.Command, ps []fractal.Peer) error {
	if ps == nil {
		ps = []fractal.Peer{}
	}
	return emit(cmd, ps, func(w io.Writer) {
		for _, p := range ps {
			printPeer(w, p)
		}
	})
}

func printPeer(w io.Writer, p fractal.Peer) {
	fmt.Fprintf(w, "instance %x\n  genesis %x\n", p.ID, p.Genesis)
	for _, k := range p.Keys {
		fmt.Fprintf(w, "  key %s\n", k)
	}
}

type exportJSON struct {
	ID         string   `json:"id"`
	To         string   `json:"to"`
	Tx         string   `json:"tx"`
	Index      uint32   `json:"index"`
	Key        string   `json:"key"`
	Value      string   `json:"value"`
	Provenance []string `json:"provenance"`
}

func toExportJSON(r *chain.ExportRecord) exportJSON {
	id := r.ID()
	j := exportJSON{ID: hex.EncodeToString(id[:]), To: hex.EncodeToString(r.To[:]), Tx: hex.EncodeToString(r.TxID[:]),
		Index: r.Index, Key: r.Note.StateKey().String(), Value: string(r.Note.Value), Provenance: []string{}}
	for _, p := range r.Note.Provenance {
		j.Provenance = append(j.Provenance, hex.EncodeToString(p))
	}
	return j
}

var exportsCmd = &cobra.Command{
	Use:   "exports [--to ID]",
	Short: "List the exports this instance committed (its outbox)",
	Long: `exports lists every note this instance's transactions exported: the export
ID, the destination instance, the transaction and index that made it, and the
note's state key as it left (the destination prepends this instance's ID).
Exports stay in the outbox for good; the destination's import index says which
were imported.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		to, err := exportsTo(cmd)
		if err != nil {
			return err
		}
		return withInstance(func(in *fractal.Instance) error {
			recs, err := in.Exports(to)
			if err != nil {
				return err
			}
			return emitExports(cmd, recs)
		})
	}),
}

// exportsTo reads exports' --to flag.
func exportsTo(cmd *cobra.Command) (*[32]byte, error) {
	s, _ := cmd.Flags().GetString("to")
	if s == "" {
		return nil, nil
	}
	h, err := parseHash(s)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	return &h, nil
}

func emitExports(cmd *cobra.Command, recs []*chain.ExportRecord) error {
	out := []exportJSON{}
	for _, r := range recs {
		out = append(out, toExportJSON(r))
	}
	return emit(cmd, out, func(w io.Writer) {
		for _, j := range out {
			fmt.Fprintf(w, "export %s to %s\n  %s %s\n", j.ID, j.To, j.Key, j.Value)
		}
	})
}

var relayCmd = &cobra.Command{
	Use:   "relay --from DIR_A|URL --to DIR_B|URL [--key KEYFILE] [--follow]",
	Short: "Move every pending export of one instance to another",
	Long: `relay opens the source and destination instances, and for every export of the
source addressed to the destination that the destination has not imported,
builds the claim (the export record, the source's signed head manifest and the
inclusion proof), queues an import transaction on the destination signed by
--key (default: the destination's executor key) and seals. Running it again
imports nothing twice. The destination must trust the source (fractal peers
add); an import refused by the destination (untrusted key, a predicate that
refuses the note on arrival) is reported and changes nothing.

Between nodes (--from and --to each a node's URL, http://HOST:PORT, or a
folder a node runs on) it reads and writes nothing but the two APIs: the
claims come from the source node, the import transactions go to the
destination node, signed here by --key (the relayer's own key: anyone may
sign an import; required when --to is a URL). With --follow it keeps
relaying, after every block the source seals, until SIGINT or SIGTERM,
printing each import as it is made (with --json, one object per pass).
`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		fromDir, _ := cmd.Flags().GetString("from")
		toDir, _ := cmd.Flags().GetString("to")
		if fromDir == "" || toDir == "" {
			return fmt.Errorf("relay needs --from and --to")
		}
		keyFile, _ := cmd.Flags().GetString("key")
		if keyFile == "" {
			keyFile = filepath.Join(toDir, "executor.key")
		}
		signer, err := keys.LoadKeyFile(keyFile)
		if err != nil {
			return err
		}
		from, err := openWaiting(fromDir)
		if err != nil {
			return err
		}
		defer from.Close()
		to, err := openWaiting(toDir)
		if err != nil {
			return err
		}
		defer to.Close()
		shown.load(toDir)
		res, err := fractal.Relay(cmd.Context(), from, to, signer)
		if err != nil {
			return err
		}
		return emitRelay(cmd, res)
	}),
}

// emitRelay prints what a relay did and fails when an import was refused.
func emitRelay(cmd *cobra.Command, res *fractal.RelayResult) error {
	out := struct {
		Pending  int      `json:"pending"`
		Imported []string `json:"imported"`
		Refused  []any    `json:"refused"`
	}{Pending: res.Pending, Imported: []string{}, Refused: []any{}}
	for _, id := range res.Imported {
		out.Imported = append(out.Imported, hex.EncodeToString(id[:]))
	}
	for _, rc := range res.Refused {
		out.Refused = append(out.Refused, rc)
	}
	err := emit(cmd, out, func(w io.Writer) {
		fmt.Fprintf(w, "relayed %d pending exports: %d imported, %d refused\n", res.Pending, len(res.Imported), len(res.Refused))
		for _, id := range out.Imported {
			fmt.Fprintf(w, "  imported %s\n", id)
		}
		for _, rc := range res.Refused {
			fmt.Fprintf(w, "  %s\n", receiptLine(rc))
		}
	})
	if err == nil && len(res.Refused) > 0 {
		err = fmt.Errorf("relay: %d imports refused", len(res.Refused))
	}
	return err
}

var exportsClaimCmd = &cobra.Command{
	Use:   "claim EXPORT_ID --out FILE",
	Short: "Write the claim file of one export, for the destination's fractal import",
	Long: `claim writes the claim of the export EXPORT_ID (as "fractal exports" lists it)
to FILE: the export record, this instance's signed head manifest and the
inclusion proof of the export against it (the Claim encoding of
docs/formats/cross-instance.md). Carry the file to the destination by any
means and run "fractal import FILE" there; the destination checks everything
in it against its trust file, so the file needs no protection in transit.
FILE must not exist. An export committed after the head block cannot be
claimed until a block is signed (every seal signs one).`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		id, out, err := claimArgs(cmd, args)
		if err != nil {
			return err
		}
		return withInstance(func(in *fractal.Instance) error {
			c, err := in.ClaimFor(id)
			if err != nil {
				return err
			}
			return writeClaim(cmd, args[0], c, out)
		})
	}),
}

// claimArgs reads exports claim's EXPORT_ID and --out.
func claimArgs(cmd *cobra.Command, args []string) ([32]byte, string, error) {
	id, err := parseHash(args[0])
	if err != nil {
		return id, "", fmt.Errorf("export ID: %w", err)
	}
	out, _ := cmd.Flags().GetString("out")
	if out == "" {
		return id, out, fmt.Errorf("exports claim needs --out FILE")
	}
	return id, out, nil
}

// writeClaim writes the claim of export id to the file out.
func writeClaim(cmd *cobra.Command, id string, c *chain.Claim, out string) error {
	raw := c.Encode()
	if err := writeNew(out, raw, 0o644); err != nil {
		return err
	}
	v := map[string]any{"file": out, "export": id, "to": hex.EncodeToString(c.Record.To[:]),
		"height": c.Manifest.Height, "bytes": len(raw)}
	return emit(cmd, v, func(w io.Writer) {
		fmt.Fprintf(w, "wrote the claim of export %s to %s (%d bytes, proven at height %d)\n", id, out, len(raw), c.Manifest.Height)
	})
}

var importCmd = &cobra.Command{
	Use:   "import FILE [--key KEYFILE]",
	Short: "Import a note from a claim file another instance wrote",
	Long: `import reads a claim file ("fractal exports claim" on the source instance),
builds the import transaction from it, signs it with --key (default: this
instance's executor key), seals and prints the receipt. The note is created
with the source's ID prepended to its provenance.

Refused, changing nothing, with one line naming the reason: a file that does
not decode, an export already imported here, an export addressed to another
instance, a source not in the trust file (fractal peers add), a manifest
signed by a key the trust file does not name or whose signature does not
verify, an inclusion proof that does not verify, a record that differs from
what the source committed, and a note its predicates refuse on arrival.`,
	Args: cobra.ExactArgs(1),
	RunE: trimmed(func(cmd *cobra.Command, args []string) error {
		keyFile, _ := cmd.Flags().GetString("key")
		if keyFile == "" {
			keyFile = filepath.Join(flagHome, "executor.key")
		}
		signer, err := keys.LoadKeyFile(keyFile)
		if err != nil {
			return err
		}
		raw, err := inputfile.Read(args[0], phases.MaxExtradata)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		return withInstance(func(in *fractal.Instance) error {
			rc, b, err := in.ImportClaim(cmd.Context(), raw, signer)
			return emitImport(cmd, args[0], in, rc, b, err)
		})
	}),
}

// emitImport prints an import's receipt, or fails naming the claim file.
func emitImport(cmd *cobra.Command, file string, ex exportLister, rc *phases.Receipt, b *chain.Block, err error) error {
	if err != nil {
		why := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "fractal: "), "import: ")
		return fmt.Errorf("import: %s: %s", file, why)
	}
	if err := emitReceipt(cmd, viewReceipt(ex, rc, b)); err != nil {
		return err
	}
	if err := refused(rc); err != nil {
		return fmt.Errorf("import: %s: %w", file, err)
	}
	return nil
}
