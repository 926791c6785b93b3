package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/fractalvm/fractal/api/fractalv1"
	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/node/client"
	"github.com/fractalvm/fractal/fractal/node/nodefile"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// The command line as a node's client (decision 114). A verb that reads or
// writes an instance takes --node URL; without it, when a node runs on
// --home (HOME/node.json, its lock held), the verb talks to that node
// instead of opening the store the node holds. A verb that needs the home
// folder itself (verify, backup, peers add, tfhe attach, ...) refuses,
// naming the node, while one runs there.

func init() {
	through(notesCmd, remoteNotes)
	through(blockCmd, remoteBlock)
	through(receiptCmd, remoteReceipt)
	through(txSubmitCmd, remoteSubmit)
	through(txSimulateCmd, remoteSimulate)
	through(codeDeployCmd, remoteDeploy)
	through(queryCmd, remoteQuery)
	through(exportsCmd, remoteExports)
	through(exportsClaimCmd, remoteClaim)
	through(importCmd, remoteImport)
	through(peersListCmd, remotePeers)
	through(peersSelfCmd, remotePeersSelf)
	through(tfhePendingCmd, remotePending)
	through(tfheShareCmd, remoteShare)
	through(tfheSubmitShareCmd, remoteSubmitShare)
	through(tfheOutcomeCmd, remoteOutcome)
	homeOnly(blockSealCmd, "the node seals blocks itself, every block time (fractal node status shows its head)")
	for _, c := range []*cobra.Command{verifyCmd, backupCmd, restoreCmd, manifestExportCmd, manifestImportCmd,
		evidenceCmd, disputeCmd, peersAddCmd, tfheAttachCmd, tfheExpireCmd, validatorEpochsCmd} {
		homeOnly(c, "it works on the home folder itself, which the node holds: stop the node first")
	}
}

// remoteTimeout bounds one verb's calls to a node; a submission that waits
// for its receipt is answered within the node's own limit (30 s by
// default).
const remoteTimeout = 60 * time.Second

// remoteVerb is a verb's work through a node.
type remoteVerb func(ctx context.Context, cmd *cobra.Command, args []string, n *nodeRef) error

// nodeRef is the node a verb talks to.
type nodeRef struct {
	*client.Client
	// home is true when the node was found through --home (so the home
	// folder's files, such as executor.key and code-names.json, are this
	// node's).
	home bool
}

// through gives cmd a --node flag and makes it talk to a node when one is
// given or runs on --home.
func through(cmd *cobra.Command, remote remoteVerb) {
	nodeFlag(cmd)
	local := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		n, err := nodeOf(cmd)
		if err != nil || n == nil {
			if err != nil {
				return err
			}
			return local(cmd, args)
		}
		ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout)
		defer cancel()
		return trimmed(func(cmd *cobra.Command, args []string) error { return remote(ctx, cmd, args, n) })(cmd, args)
	}
}

// nodeFlag gives cmd the --node flag.
func nodeFlag(cmd *cobra.Command) {
	cmd.Flags().String("node", "", "talk to the node at URL (default: the node running on --home, if any)")
}

// homeOnly makes cmd refuse, naming the node and why, while a node runs on
// --home.
func homeOnly(cmd *cobra.Command, why string) {
	local := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if info, _ := nodefile.Find(flagHome); info != nil {
			return fmt.Errorf("%s: a node (pid %d, %s) runs on %s, and %s", cmd.CommandPath()[len("fractal "):], info.PID, info.URL, flagHome, why)
		}
		return local(cmd, args)
	}
}

// nodeOf returns the node cmd talks to: --node, or the node running on
// --home; nil when neither.
func nodeOf(cmd *cobra.Command) (*nodeRef, error) {
	if url, _ := cmd.Flags().GetString("node"); url != "" {
		c, err := client.New(url)
		if err != nil {
			return nil, err
		}
		return &nodeRef{Client: c}, nil
	}
	info, _ := nodefile.Find(flagHome) // a damaged node.json: open the store, which says whether it is in use
	if info == nil {
		return nil, nil
	}
	c, err := client.New(info.URL)
	if err != nil {
		return nil, err
	}
	return &nodeRef{Client: c, home: true}, nil
}

// exports lists a node's outbox for viewReceipt.
type nodeExports struct {
	ctx context.Context
	n   *nodeRef
}

func (e nodeExports) Exports(to *[32]byte) ([]*chain.ExportRecord, error) {
	list, err := e.n.Exports(e.ctx, to)
	if err != nil {
		return nil, err
	}
	out := make([]*chain.ExportRecord, len(list))
	for i, x := range list {
		out[i] = x.Record
	}
	return out, nil
}

func remoteNotes(ctx context.Context, cmd *cobra.Command, _ []string, n *nodeRef) error {
	text, _ := cmd.Flags().GetString("pattern")
	if _, err := notes.ParsePattern(text); err != nil {
		return err
	}
	list, err := n.Notes(ctx, text)
	if err != nil {
		return err
	}
	return emitNotes(cmd, list)
}

func remoteBlock(ctx context.Context, cmd *cobra.Command, args []string, n *nodeRef) error {
	h, err := blockHeight(args)
	if err != nil {
		return err
	}
	b, err := n.Block(ctx, h)
	if err != nil {
		return err
	}
	return emitBlock(cmd, b, false)
}

func remoteReceipt(ctx context.Context, cmd *cobra.Command, args []string, n *nodeRef) error {
	id, err := parseHash(args[0])
	if err != nil {
		return fmt.Errorf("transaction ID: %w", err)
	}
	out, err := n.Receipt(ctx, id)
	if err != nil {
		return err
	}
	if out.State == v1.TransactionState_TRANSACTION_STATE_QUEUED {
		// As from the folder: no receipt yet, and the command fails.
		return fmt.Errorf("receipt %x: queued, not sealed yet: a block that takes it stores its receipt", id)
	}
	return emitNodeOutcome(ctx, cmd, n, out)
}

// emitNodeOutcome prints where a transaction stands on a node: queued, or
// its receipt (failing when refused), with the block that committed it.
func emitNodeOutcome(ctx context.Context, cmd *cobra.Command, n *nodeRef, out *client.Outcome) error {
	if out.State == v1.TransactionState_TRANSACTION_STATE_QUEUED {
		return emitQueued(cmd, out.ID)
	}
	var b *chain.Block
	if out.State == v1.TransactionState_TRANSACTION_STATE_COMMITTED {
		var err error
		if b, err = n.Block(ctx, &out.Height); err != nil {
			return err
		}
	}
	return emitOutcome(cmd, viewReceipt(nodeExports{ctx, n}, out.Receipt, b))
}

func remoteSubmit(ctx context.Context, cmd *cobra.Command, args []string, n *nodeRef) error {
	if len(args) > 1 {
		return remoteSubmitBatch(ctx, cmd, args, n)
	}
	tx, err := readSignedTx(cmd, args[0], nodeEstimate(ctx, n))
	if err != nil {
		return err
	}
	if encrypt, _ := cmd.Flags().GetBool("encrypt"); encrypt {
		return remoteSubmitEncrypted(ctx, cmd, tx, n)
	}
	noSeal, _ := cmd.Flags().GetBool("no-seal")
	out, err := n.Submit(ctx, tx, !noSeal)
	if err != nil {
		return err
	}
	return emitNodeOutcome(ctx, cmd, n, out)
}

// remoteSubmitBatch is tx submit of several files: one SubmitTransactions
// call, then each transaction's outcome in order (a refusal at admission
// as a line naming its file); it fails when any was refused.
func remoteSubmitBatch(ctx context.Context, cmd *cobra.Command, files []string, n *nodeRef) error {
	if encrypt, _ := cmd.Flags().GetBool("encrypt"); encrypt {
		return fmt.Errorf("--encrypt takes one transaction file")
	}
	txs := make([]*phases.Tx, len(files))
	for i, f := range files {
		tx, err := readSignedTx(cmd, f, nodeEstimate(ctx, n))
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		txs[i] = tx
	}
	noSeal, _ := cmd.Flags().GetBool("no-seal")
	res, err := n.SubmitBatch(ctx, txs, !noSeal)
	if err != nil {
		return err
	}
	refusedN := 0
	for i, r := range res {
		err := r.Err
		if err != nil {
			out := map[string]string{"file": files[i], "tx": fmt.Sprintf("%x", r.ID), "status": "refused", "error": err.Error()}
			err = emit(cmd, out, func(w io.Writer) { fmt.Fprintf(w, "refused %x (%s): %s\n", r.ID, files[i], r.Err) })
			if err == nil {
				err = r.Err
			}
		} else {
			err = emitNodeOutcome(ctx, cmd, n, &r.Outcome)
		}
		if err != nil {
			refusedN++
		}
	}
	if refusedN > 0 {
		return fmt.Errorf("%d of %d transactions refused (above)", refusedN, len(files))
	}
	return nil
}

// nodeEstimate is --gas auto through n, within the verb's deadline ctx.
func nodeEstimate(ctx context.Context, n *nodeRef) gasEstimator {
	return func(_ context.Context, tx *phases.Tx) (*fractal.GasEstimate, error) { return n.EstimateGas(ctx, tx) }
}

func remoteSimulate(ctx context.Context, cmd *cobra.Command, args []string, n *nodeRef) error {
	tx, err := readSignedTx(cmd, args[0], nodeEstimate(ctx, n))
	if err != nil {
		return err
	}
	rc, err := n.Simulate(ctx, tx)
	if err != nil {
		return err
	}
	return emitSimulated(cmd, viewReceipt(nodeExports{ctx, n}, rc, nil))
}

func remoteDeploy(ctx context.Context, cmd *cobra.Command, args []string, n *nodeRef) error {
	src, err := inputfile.Read(args[0], chain.MaxCodeBytes)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	h, err := n.Deploy(ctx, src)
	if err != nil {
		return err
	}
	if n.home {
		if err := recordName(flagHome, src, args[0]); err != nil {
			return fmt.Errorf("deploy: code %x stored, but its file name was not recorded: %w", h, err)
		}
	}
	out := map[string]string{"file": args[0], "hash": fmt.Sprintf("%x", h)}
	return emit(cmd, out, func(w io.Writer) { fmt.Fprintln(w, out["hash"]) })
}

func remoteQuery(ctx context.Context, cmd *cobra.Command, _ []string, n *nodeRef) error {
	k, prove, out, err := queryFlags(cmd)
	if err != nil {
		return err
	}
	qp, err := n.Prove(ctx, k)
	if err != nil {
		return err
	}
	if qp.Key.String() != k.String() {
		return fmt.Errorf("node %s answered for state key %s", n.URL, qp.Key)
	}
	return emitQuery(cmd, k, qp, prove, out)
}

func remoteExports(ctx context.Context, cmd *cobra.Command, _ []string, n *nodeRef) error {
	to, err := exportsTo(cmd)
	if err != nil {
		return err
	}
	recs, err := nodeExports{ctx, n}.Exports(to)
	if err != nil {
		return err
	}
	return emitExports(cmd, recs)
}

func remoteClaim(ctx context.Context, cmd *cobra.Command, args []string, n *nodeRef) error {
	id, out, err := claimArgs(cmd, args)
	if err != nil {
		return err
	}
	raw, err := n.Claim(ctx, id)
	if err != nil {
		return err
	}
	c, err := chain.DecodeClaim(raw)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.URL, err)
	}
	if c.Record.ID() != id {
		return fmt.Errorf("node %s sent the claim of export %x", n.URL, c.Record.ID())
	}
	return writeClaim(cmd, args[0], c, out)
}

// importKey is the key that signs an import: --key, or the executor key of
// the home folder the node was found through.
func importKey(cmd *cobra.Command, n *nodeRef) (keys.PrivateKey, error) {
	keyFile, _ := cmd.Flags().GetString("key")
	if keyFile == "" {
		if !n.home {
			return keys.PrivateKey{}, errors.New("import through --node needs --key KEYFILE: the key that signs the import transaction (anyone's)")
		}
		keyFile = filepath.Join(flagHome, "executor.key")
	}
	return keys.LoadKeyFile(keyFile)
}

func remoteImport(ctx context.Context, cmd *cobra.Command, args []string, n *nodeRef) error {
	signer, err := importKey(cmd, n)
	if err != nil {
		return err
	}
	raw, err := inputfile.Read(args[0], phases.MaxExtradata)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	rc, b, err := importThrough(ctx, n, raw, signer)
	return emitImport(cmd, args[0], nodeExports{ctx, n}, rc, b, err)
}

// importThrough imports one claim on a node, as Instance.ImportClaim does
// locally: the import transaction signed by signer, submitted, and its
// receipt waited for.
func importThrough(ctx context.Context, n *nodeRef, raw []byte, signer keys.PrivateKey) (*phases.Receipt, *chain.Block, error) {
	c, err := chain.DecodeClaim(raw)
	if err != nil {
		return nil, nil, err
	}
	done, err := n.Imported(ctx, c.Record.ID())
	if err != nil {
		return nil, nil, err
	}
	if done {
		return nil, nil, fmt.Errorf("export %x was already imported", c.Record.ID())
	}
	tx := chain.ImportTx(c, signer.Public())
	if err := tx.Sign(rand.Reader, signer); err != nil {
		return nil, nil, err
	}
	out, err := n.Submit(ctx, tx, true)
	if err != nil {
		return nil, nil, err
	}
	switch out.State {
	case v1.TransactionState_TRANSACTION_STATE_QUEUED:
		return nil, nil, fmt.Errorf("transaction %x is queued on the node and not sealed yet: fractal receipt %x", out.ID[:8], out.ID)
	case v1.TransactionState_TRANSACTION_STATE_REFUSED:
		return out.Receipt, nil, nil
	}
	b, err := n.Block(ctx, &out.Height)
	return out.Receipt, b, err
}

func remotePeers(ctx context.Context, cmd *cobra.Command, _ []string, n *nodeRef) error {
	ps, err := n.Peers(ctx)
	if err != nil {
		return err
	}
	return emitPeers(cmd, ps)
}

func remotePeersSelf(ctx context.Context, cmd *cobra.Command, _ []string, n *nodeRef) error {
	p, err := n.TrustEntry(ctx)
	if err != nil {
		return err
	}
	return emit(cmd, p, func(w io.Writer) { printPeer(w, p) })
}
