package fractal_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// allowAll is a predicate that accepts everything: enough for an example,
// never for value (examples/token and examples/sig are real ones).
var allowAll = []byte("return true")

// mintTx creates one note under app (as application and owner) at key,
// signed by signer: a transaction with no inputs, only outputs.
func mintTx(app notes.Hash, key, value string, signer keys.PrivateKey) *phases.Tx {
	h := hex.EncodeToString(app[:])
	tx := &phases.Tx{
		GasLimit: 100_000,
		Write:    notes.ConstraintSet{notes.AnyPattern().WithProvenance(nil).WithApplication(app).WithOwner(app)},
		Calculation: fmt.Appendf(nil, "return {{provenance = {}, application = %q, owner = %q, key = %q, value = %q}}",
			h, h, key, value),
		Signers: []keys.PublicKey{signer.Public()},
	}
	if err := tx.Sign(rand.Reader, signer); err != nil {
		log.Fatal(err)
	}
	return tx
}

// exampleKey is a fixed key, so that the transaction, and the example's
// output, are the same every run (the ID does not cover the randomized
// signature). Real keys come from keys.GenerateKey(rand.Reader).
func exampleKey() keys.PrivateKey {
	k, err := keys.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		log.Fatal(err)
	}
	return k
}

// newExampleHome creates an instance in a temporary folder (removed by
// done), deploys allowAll in it, whose hash it returns, and closes it.
func newExampleHome() (home string, app notes.Hash, done func()) {
	dir, err := os.MkdirTemp("", "fractal-example-")
	if err != nil {
		log.Fatal(err)
	}
	home = filepath.Join(dir, "instance")
	in, err := fractal.Init(home, fractal.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	if app, err = in.Deploy(allowAll); err != nil {
		log.Fatal(err)
	}
	if err := in.Close(); err != nil {
		log.Fatal(err)
	}
	return home, app, func() { os.RemoveAll(dir) }
}

// An instance embedded in a program: open its home folder (made by
// fractal.Init, or fractal init), submit a transaction, seal a block, and
// prove what lives at a state key, checked as anyone holding only the
// executor's public key would.
func Example() {
	home, app, done := newExampleHome()
	defer done()
	ctx := context.Background()

	in, err := fractal.Open(home)
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	tx := mintTx(app, "greeting", "hello", exampleKey())
	if _, err := in.Submit(tx); err != nil {
		log.Fatal(err)
	}
	s, err := in.Seal(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("block %d holds %d transaction: %s\n", s.Block.Height, len(s.Block.TxIDs), s.Receipts[0].Status)

	key := notes.StateKey{Application: app, Owner: app, Key: []byte("greeting")}
	qp, err := in.Prove(key)
	if err != nil {
		log.Fatal(err)
	}
	// The proof travels as bytes; the checker needs the executor's key.
	got, err := chain.DecodeQueryProof(qp.Encode())
	if err != nil {
		log.Fatal(err)
	}
	id := in.ID()
	st, err := chain.CheckQueryProof(got, in.Executor(), &id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("proven at height %d: %s\n", st.Height, st.Note.Value)
	// Output:
	// block 1 holds 1 transaction: accepted
	// proven at height 1: hello
}

// The stages of the block lifecycle driven one by one, as a consensus
// engine would from its own hooks: Check a transaction's bytes (CheckTx),
// Execute a block of transactions handed in (FinalizeBlock: nothing is
// written, the manifest hash is the app hash), Commit it (Commit), signed
// through the instance's signer.
func Example_stages() {
	home, app, done := newExampleHome()
	defer done()
	ctx := context.Background()
	in, err := fractal.Open(home)
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()

	tx, err := in.Check(ctx, mintTx(app, "k", "v", exampleKey()).Encode())
	if err != nil {
		log.Fatal(err)
	}
	head, err := in.Head()
	if err != nil {
		log.Fatal(err)
	}
	p := &fractal.Proposal{Parent: head, Producer: in.Executor(), Txs: []*phases.Tx{tx}}
	c := in.BeginCommit(p)
	defer c.Discard()
	x, err := in.Execute(ctx, p, func(r *fractal.TxResult) error {
		fmt.Printf("transaction %d: %s\n", r.Index, r.Outcome.Receipt.Status)
		return c.Apply(r)
	})
	if err != nil {
		log.Fatal(err)
	}
	manifest := x.Block.Hash()
	s, err := c.Finish(ctx, x, true)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("committed block", s.Block.Height, "with the executed manifest:", s.Block.Hash() == manifest)
	fmt.Println("signed by the executor:", chain.VerifyBlock(s.Block) == nil)
	_, err = in.Check(ctx, tx.Encode())
	fmt.Println("checked again:", err)
	// Output:
	// transaction 0: accepted
	// committed block 1 with the executed manifest: true
	// signed by the executor: true
	// checked again: fractal: check 4732fdd90d5a7699: replayed transaction: already executed in block 1
}
