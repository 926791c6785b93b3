package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/shielded/wallet"
	"github.com/fractalvm/fractal/zk"
)

func init() {
	shieldedAddressCmd.Flags().Bool("new", false, "create the wallet (a fresh spending key) first")
	for _, c := range []*cobra.Command{shieldedAddressCmd, shieldedSyncCmd, shieldedBalanceCmd, shieldedShieldCmd, shieldedTransferCmd, shieldedUnshieldCmd} {
		c.Flags().String("wallet", "", "wallet folder (default HOME/wallet)")
	}
	for _, c := range []*cobra.Command{shieldedShieldCmd, shieldedTransferCmd, shieldedUnshieldCmd} {
		c.Flags().String("app", "", "token application hash (64 hex digits)")
		c.Flags().String("token", "", "token as <issuer key>:<SYMBOL>")
		c.Flags().Uint64("amount", 0, "amount to move")
		c.Flags().String("to", "", "recipient")
	}
	shieldedShieldCmd.Flags().String("key", "", "key file of the owner of the token notes to shield")
	shieldedUnshieldCmd.Flags().String("owner", "", "owner predicate hash of the recipient's new token note (64 hex digits)")
	shieldedCmd.AddCommand(shieldedAddressCmd, shieldedSyncCmd, shieldedBalanceCmd, shieldedShieldCmd, shieldedTransferCmd, shieldedUnshieldCmd)
}

// walletDir is --wallet, or HOME/wallet.
func walletDir(cmd *cobra.Command) string {
	if d, _ := cmd.Flags().GetString("wallet"); d != "" {
		return d
	}
	return filepath.Join(flagHome, "wallet")
}

var shieldedAddressCmd = &cobra.Command{
	Use:   "address [--new] [--wallet DIR]",
	Short: "Print the wallet's shielded address (create the wallet with --new)",
	Long: `address prints the address other wallets send shielded notes to: standard
base64 of the owner (spend part) and the X25519 key notes are encrypted to.
With --new it first creates the wallet folder with a fresh spending key
(DIR/spend.key, keep it secret: it spends every note of the wallet).`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		dir := walletDir(cmd)
		var w *wallet.Wallet
		var err error
		if create, _ := cmd.Flags().GetBool("new"); create {
			w, err = wallet.Create(dir)
		} else {
			w, err = wallet.Open(dir)
		}
		if err != nil {
			return err
		}
		addr := w.Keys.Address().String()
		return emit(cmd, map[string]string{"address": addr, "wallet": dir}, func(out io.Writer) { fmt.Fprintln(out, addr) })
	},
}

// syncBar is a progress function for wallet syncs (progressBar).
func syncBar(cmd *cobra.Command) func(done, total uint64) {
	bar := progressBar(cmd, "sync")
	return func(done, total uint64) { bar(int(done), int(total)) }
}

// proveBar is a progress function for proving: a bar on a terminal while
// the proof is made.
func proveBar(cmd *cobra.Command) func(finished bool) {
	var bar interface{ Finish() error }
	return func(finished bool) {
		if !finished {
			if b := stderrBar(1, "proving"); b != nil {
				bar = b
			}
			return
		}
		if bar != nil {
			bar.Finish()
			fmt.Fprintln(cmd.ErrOrStderr())
			bar = nil
		}
	}
}

type syncJSON struct {
	From     uint64           `json:"from"`
	To       uint64           `json:"to"`
	Found    int              `json:"found"`
	Spent    int              `json:"spent"`
	Balances []wallet.Balance `json:"balances"`
}

var shieldedSyncCmd = &cobra.Command{
	Use:   "sync [--wallet DIR] [--node URL [--trust FILE]]",
	Short: "Scan new blocks for the wallet's notes",
	Long: `sync scans the blocks sealed since the wallet's last sync: it checks each
block's signature and link, tries to decrypt every shielded output, keeps
the Merkle witnesses of the wallet's notes current, marks notes whose
nullifiers appear as spent, and checks its commitment tree against each
block's commitment root. It saves as it goes, so an interrupted sync resumes
where it stopped. It prints the blocks scanned, notes found and spent, and
the balances. Through a node (--node URL, or the node running on --home) it
reads the blocks as one stream of compact blocks: each block's signed header
and its shielded transactions' public outputs. A validator set's node serves
unsigned blocks: --trust FILE names its trust entry (a devnet's trust.json),
and the wallet checks the validators' certificate of the last block before
each save.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		w, err := wallet.Open(walletDir(cmd))
		if err != nil {
			return err
		}
		return withShielded(cmd, func(in wallet.Instance, _ exportLister) error {
			rep, err := w.Sync(in, syncBar(cmd))
			if err != nil {
				return err
			}
			v := syncJSON{From: rep.From, To: rep.To, Found: rep.Found, Spent: rep.Spent, Balances: balances(w)}
			return emit(cmd, v, func(out io.Writer) {
				if rep.From > rep.To {
					fmt.Fprintf(out, "up to date at block %d\n", rep.To)
				} else {
					fmt.Fprintf(out, "scanned blocks %d..%d: %d notes found, %d spent\n", rep.From, rep.To, rep.Found, rep.Spent)
				}
				printBalances(out, v.Balances)
			})
		})
	}),
}

func balances(w *wallet.Wallet) []wallet.Balance {
	if b := w.Balances(); b != nil {
		return b
	}
	return []wallet.Balance{}
}

func printBalances(out io.Writer, bs []wallet.Balance) {
	if len(bs) == 0 {
		fmt.Fprintln(out, "no shielded notes")
	}
	for _, b := range bs {
		fmt.Fprintf(out, "%d %s (%d notes)\n", b.Value, b.Name, b.Notes)
	}
}

var shieldedBalanceCmd = &cobra.Command{
	Use:   "balance [--wallet DIR]",
	Short: "Print the wallet's unspent shielded notes per asset, as of its last sync",
	Long: `balance prints, per asset ("<application hex>/<issuer>:<symbol>"), the
value and number of the wallet's unspent notes as of its last sync. It reads
only the wallet folder; run sync first to see new blocks.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		w, err := wallet.Open(walletDir(cmd))
		if err != nil {
			return err
		}
		bs := balances(w)
		return emit(cmd, map[string]any{"synced_to": w.State.Next - min(w.State.Next, 1), "balances": bs}, func(out io.Writer) {
			printBalances(out, bs)
		})
	},
}

// maxAddressFile bounds an address file: one 88-character line, with room
// for a comment.
const maxAddressFile = 4 << 10

// addressFlag reads --to: an address, or @FILE holding one (as printed by
// fractal shielded address).
func addressFlag(s string) (wallet.Address, error) {
	if name, ok := strings.CutPrefix(s, "@"); ok {
		b, err := inputfile.Read(name, maxAddressFile)
		if err != nil {
			return wallet.Address{}, fmt.Errorf("--to: %w", err)
		}
		s = strings.TrimSpace(string(b))
	}
	a, err := wallet.ParseAddress(s)
	if err != nil {
		return a, fmt.Errorf("--to: %w", err)
	}
	return a, nil
}

// tokenFlags reads --app and --token.
func tokenFlags(cmd *cobra.Command) (wallet.Token, error) {
	app, _ := cmd.Flags().GetString("app")
	token, _ := cmd.Flags().GetString("token")
	h, err := parseHash(app)
	if err != nil {
		return wallet.Token{}, fmt.Errorf("--app: %w", err)
	}
	if token == "" {
		return wallet.Token{}, errors.New("--token <issuer key>:<SYMBOL> is required")
	}
	return wallet.Token{App: h, Name: token}, nil
}

// sendFunc runs one shielded transaction through an instance (the
// wallet's SendShield, SendTransfer or SendUnshield).
type sendFunc func(ctx context.Context, in wallet.Instance, w *wallet.Wallet, pk *zk.Keys, tok wallet.Token, amount uint64, pr wallet.Progress) (*wallet.Sent, error)

// shieldedVerb reads --app, --token and --amount, opens the wallet, the
// proving keys and the instance, runs send with progress bars and prints
// the receipt.
func shieldedVerb(cmd *cobra.Command, send sendFunc) error {
	tok, err := tokenFlags(cmd)
	if err != nil {
		return err
	}
	amount, _ := cmd.Flags().GetUint64("amount")
	if amount == 0 {
		return errors.New("--amount must be at least 1")
	}
	w, err := wallet.Open(walletDir(cmd))
	if err != nil {
		return err
	}
	cc, err := shielded.Compiled()
	if err != nil {
		return err
	}
	pk, err := zkCache().Load(cc)
	if err != nil {
		return err
	}
	return withShielded(cmd, func(in wallet.Instance, ex exportLister) error {
		sent, err := send(cmd.Context(), in, w, pk, tok, amount, wallet.Progress{Sync: syncBar(cmd), Prove: proveBar(cmd)})
		if err != nil {
			return err
		}
		v := viewReceipt(ex, sent.Receipt, sent.Block)
		v.proving = sent.Proving
		if err := refused(sent.Receipt); err != nil {
			emitReceipt(cmd, v)
			return fmt.Errorf("transaction %x %w", sent.TxID[:8], err)
		}
		return emitReceipt(cmd, v)
	})
}

var shieldedShieldCmd = &cobra.Command{
	Use:   "shield --key KEYFILE --app HASH --token ISSUER:SYMBOL --amount N [--to ADDRESS|@FILE] [--wallet DIR] [--node URL [--trust FILE]]",
	Short: "Move transparent token notes into the shielded pool",
	Long: `shield spends token notes of --app and --token whose key starts with the
key file's public key (the layout of examples/token with the sig owner
predicate), pays --amount into the token's pool note and creates a shielded
note of that amount for --to (default: this wallet's address); the change
goes back to the key as a transparent note. The key signs. The wallet is
synced first (its tree root is the proof's anchor), the proof is made
(about a second), and the transaction is submitted and sealed; its receipt
is printed.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		keyFile, _ := cmd.Flags().GetString("key")
		if keyFile == "" {
			return errors.New("--key is required: the owner of the token notes signs")
		}
		key, err := keys.LoadKeyFile(keyFile)
		if err != nil {
			return err
		}
		var to *wallet.Address // default: the wallet's own
		if s, _ := cmd.Flags().GetString("to"); s != "" {
			a, err := addressFlag(s)
			if err != nil {
				return err
			}
			to = &a
		}
		return shieldedVerb(cmd, func(ctx context.Context, in wallet.Instance, w *wallet.Wallet, pk *zk.Keys, tok wallet.Token, amount uint64, pr wallet.Progress) (*wallet.Sent, error) {
			addr := w.Keys.Address()
			if to != nil {
				addr = *to
			}
			return w.SendShield(ctx, in, pk, tok, amount, key, addr, pr)
		})
	}),
}

var shieldedTransferCmd = &cobra.Command{
	Use:   "transfer --to ADDRESS|@FILE --app HASH --token ISSUER:SYMBOL --amount N [--wallet DIR] [--node URL [--trust FILE]]",
	Short: "Send shielded notes to another address",
	Long: `transfer spends up to two of the wallet's notes of the token (the largest
one if it is enough, else the two largest), sends --amount to --to and the
change back to the wallet, all inside the pool: the instance sees only
nullifiers, commitments, the asset and the proof. It syncs first, proves,
submits and seals, prints the receipt and syncs again.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		s, _ := cmd.Flags().GetString("to")
		to, err := addressFlag(s)
		if err != nil {
			return err
		}
		return shieldedVerb(cmd, func(ctx context.Context, in wallet.Instance, w *wallet.Wallet, pk *zk.Keys, tok wallet.Token, amount uint64, pr wallet.Progress) (*wallet.Sent, error) {
			return w.SendTransfer(ctx, in, pk, tok, amount, to, pr)
		})
	}),
}

var shieldedUnshieldCmd = &cobra.Command{
	Use:   "unshield --to KEY --owner HASH --app HASH --token ISSUER:SYMBOL --amount N [--wallet DIR] [--node URL [--trust FILE]]",
	Short: "Move shielded notes back to a transparent token note",
	Long: `unshield spends up to two of the wallet's notes of the token, takes
--amount out of the token's pool note and creates a transparent token note
"<KEY>:<tag>:1" of that amount owned by the predicate --owner (for example
the hash of examples/sig/sig.lua, so KEY's signature spends it); the change
stays shielded in the wallet.`,
	Args: cobra.NoArgs,
	RunE: trimmed(func(cmd *cobra.Command, _ []string) error {
		s, _ := cmd.Flags().GetString("to")
		to, err := keys.ParsePublicKey(s)
		if err != nil {
			return fmt.Errorf("--to: %w", err)
		}
		o, _ := cmd.Flags().GetString("owner")
		owner, err := parseHash(o)
		if err != nil {
			return fmt.Errorf("--owner: %w", err)
		}
		return shieldedVerb(cmd, func(ctx context.Context, in wallet.Instance, w *wallet.Wallet, pk *zk.Keys, tok wallet.Token, amount uint64, pr wallet.Progress) (*wallet.Sent, error) {
			return w.SendUnshield(ctx, in, pk, tok, amount, to, owner, pr)
		})
	}),
}
