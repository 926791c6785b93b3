package fractal

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
)

// exported mints on instance from and exports the whole note to to; it
// returns the record and the height of the block before the export.
func (w *world) exported(t testing.TB, from int, to [32]byte) (*chain.ExportRecord, uint64) {
	t.Helper()
	key := w.mint(t, from, 100)
	before, err := w.ins[from].Head()
	if err != nil {
		t.Fatal(err)
	}
	rc := w.run(t, w.ins[from], w.exportTx(from, to, 0, key))
	if err := rc.Err(); err != nil {
		t.Fatal(err)
	}
	recs, err := w.ins[from].Exports(&to)
	if err != nil || len(recs) == 0 {
		t.Fatalf("exports: %d, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.TxID == rc.TxID {
			return r, before.Height
		}
	}
	t.Fatal("export not in the outbox")
	return nil, 0
}

// importClaim queues an import of c on in (signed by alice, with a fresh
// nonce) and seals; it returns the receipt.
func (w *world) importClaim(t testing.TB, in *Instance, c *chain.Claim) *phases.Receipt {
	t.Helper()
	tx := chain.ImportTx(c, w.alice.Public())
	w.nonce++
	tx.Nonce = w.nonce
	if err := tx.Sign(rand.Reader, w.alice); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Submit(tx); err != nil {
		t.Fatal(err)
	}
	s, err := in.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Receipts[len(s.Receipts)-1]
}

func claimOf(t testing.TB, in *Instance, rec *chain.ExportRecord) *chain.Claim {
	t.Helper()
	c, err := in.ExportClaim(rec)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh copy through the encoding, so each case can alter its own.
	c, err = chain.DecodeClaim(c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestImportRefusals: every way an import can be wrong is refused with its
// reason, and the destination's store is byte for byte what it was.
func TestImportRefusals(t *testing.T) {
	w := newWorld(t, 3)
	a, b, c := w.ins[0], w.ins[1], w.ins[2]
	rec, beforeHeight := w.exported(t, 0, b.ID())
	toC, _ := w.exported(t, 0, c.ID())

	outsider, _ := newTestInstance(t) // not in b's trust file
	deploy(t, outsider, "../examples/token/token.lua")
	deploy(t, outsider, "../examples/sig/sig.lua")
	w.ins = append(w.ins, outsider)
	fromOutsider, _ := w.exported(t, 3, b.ID())

	cases := []struct {
		name  string
		claim func() *chain.Claim
		want  string
	}{
		{"altered proof", func() *chain.Claim {
			cl := claimOf(t, a, rec)
			cl.Proof.Siblings[len(cl.Proof.Siblings)-1][0] ^= 1
			return cl
		}, "the inclusion proof does not verify"},
		{"altered record", func() *chain.Claim {
			cl := claimOf(t, a, rec)
			cl.Record.Note.Value = bytes.Replace(cl.Record.Note.Value, []byte(":100"), []byte(":999"), 1)
			return cl
		}, "the export record differs from the one instance"},
		{"manifest signed by an untrusted key", func() *chain.Claim {
			cl := claimOf(t, a, rec)
			if err := chain.SignBlock(context.Background(), cl.Manifest, keys.NewKeySigner(genKey(t))); err != nil {
				t.Fatal(err)
			}
			return cl
		}, "a key the trust file does not name"},
		{"forged signature", func() *chain.Claim {
			cl := claimOf(t, a, rec)
			cl.Manifest.Signature[5] ^= 1
			return cl
		}, "the manifest's signature does not verify"},
		{"not yet covered by a signed manifest", func() *chain.Claim {
			cl := claimOf(t, a, rec)
			old, err := a.Block(beforeHeight)
			if err != nil {
				t.Fatal(err)
			}
			old.TxIDs = nil
			cl.Manifest = old
			err = a.db.View(func(txn *badger.Txn) (err error) {
				cl.Proof, err = tree.Prove(badgerdb.KV{Txn: txn}, old.StateRoot, chain.OutboxKey(rec.TxID, rec.Index))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return cl
		}, "not yet covered by a signed manifest"},
		{"addressed to another instance", func() *chain.Claim { return claimOf(t, a, toC) }, "is addressed to instance"},
		{"source not trusted", func() *chain.Claim { return claimOf(t, outsider, fromOutsider) }, "is not in the trust file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := tc.claim()
			before := dumpStore(t, b)
			rc := w.importClaim(t, b, cl)
			if rc.Status != phases.Refused || rc.Phase != phases.PhaseAdmission || !strings.Contains(rc.Reason, tc.want) {
				t.Fatalf("got %s: %q, want refused in admission with %q", rc.Status, rc.Reason, tc.want)
			}
			if after := dumpStore(t, b); after != before {
				t.Fatalf("the refused import changed the store:\n%s", diffLines(before, after))
			}
		})
	}

	// The genuine claim is accepted once; a second import, in a later
	// block or in the same block, is refused.
	good := claimOf(t, a, rec)
	if rc := w.importClaim(t, b, good); rc.Err() != nil {
		t.Fatal(rc.Err())
	}
	before := dumpStore(t, b)
	rc := w.importClaim(t, b, good)
	if rc.Status != phases.Refused || !strings.Contains(rc.Reason, "was already imported") {
		t.Fatalf("second import: %s %q", rc.Status, rc.Reason)
	}
	if dumpStore(t, b) != before {
		t.Fatal("the refused second import changed the store")
	}

	twice, _ := w.exported(t, 0, b.ID())
	cl := claimOf(t, a, twice)
	var txs []*phases.Tx
	for i := 0; i < 2; i++ {
		tx := chain.ImportTx(cl, w.alice.Public())
		tx.Nonce = uint64(1000 + i)
		if err := tx.Sign(rand.Reader, w.alice); err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	for _, err := range b.SubmitAll(txs) {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := b.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Receipts) != 2 || s.Receipts[0].Err() != nil || !strings.Contains(s.Receipts[1].Reason, "was already imported") {
		t.Fatalf("one block, two imports of one export: %v / %v", s.Receipts[0].Err(), s.Receipts[1].Err())
	}
	if _, err := b.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// localOnly is an owner predicate that refuses notes arriving from another
// instance and otherwise behaves as sig.lua.
const localOnly = `
if imported then error("this owner takes no imported notes from " .. imported.from, 0) end
if role == "output" then return true end
for _, s in ipairs(signers) do
  if s == string.sub(note.key, 1, 44) then return true end
end
error("owner has not signed", 0)`

// TestImportRefusedByPredicate: a note whose owner predicate refuses on
// arrival is not created, and nothing changes.
func TestImportRefusedByPredicate(t *testing.T) {
	w := newWorld(t, 2)
	a, b := w.ins[0], w.ins[1]
	var local notes.Hash
	for _, in := range w.ins {
		h, err := in.Deploy([]byte(localOnly))
		if err != nil {
			t.Fatal(err)
		}
		local = h
	}
	anyOwner, _ := notes.ParsePattern(fmt.Sprintf("*/%x/*/*", w.token))
	rc := w.run(t, a, &phases.Tx{
		Write:       notes.ConstraintSet{anyOwner},
		Calculation: readFile(t, "../examples/token/mint.lua"),
		Extradata:   []byte(fmt.Sprintf("%x %x %s GOLD 5", w.token, local, w.alice.Public())),
	})
	if err := rc.Err(); err != nil {
		t.Fatal(err)
	}
	tx := w.exportTx(0, b.ID(), 0, rc.Outputs[0].Key)
	tx.Write = notes.ConstraintSet{anyOwner}
	if rc := w.run(t, a, tx); rc.Err() != nil {
		t.Fatal(rc.Err()) // leaving is allowed: alice signed
	}
	before := dumpStore(t, b)
	res, err := Relay(context.Background(), a, b, w.alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Imported) != 0 || len(res.Refused) != 1 {
		t.Fatalf("relay: %+v", res)
	}
	r := res.Refused[0]
	if r.Phase != phases.PhaseValidity || r.Predicate.Role != phases.RoleOutput || r.Predicate.Code != local ||
		!strings.Contains(r.Reason, "this owner takes no imported notes from") {
		t.Fatalf("refusal: %s %s %q", r.Phase, r.Predicate.Role, r.Reason)
	}
	if dumpStore(t, b) != before {
		t.Fatal("the refused import changed the store")
	}
}

// TestExportRefusals: an export with invented provenance, one addressed to
// the exporting instance, and one whose owner has not signed are refused in
// the exporting instance and leave no outbox entry.
func TestExportRefusals(t *testing.T) {
	w := newWorld(t, 2)
	a := w.ins[0]
	key := w.mint(t, 0, 10)
	bob := genKey(t)
	forged := strings.Replace(exportCalc, "if count == 0 then return {}, { { to = to, note = n } } end",
		`if count == 0 then n.provenance = { string.rep("ab", 32) } return {}, { { to = to, note = n } } end`, 1)
	cases := []struct {
		name   string
		tx     *phases.Tx
		signer *keys.PrivateKey
		want   string
	}{
		{"invented provenance", func() *phases.Tx {
			tx := w.exportTx(0, w.ins[1].ID(), 0, key)
			tx.Calculation = []byte(forged)
			return tx
		}(), nil,
			"export 1: its provenance is neither empty nor that of an input"},
		{"to itself", w.exportTx(0, a.ID(), 0, key), nil, "export 1 is addressed to this instance"},
		{"owner has not signed", w.exportTx(0, w.ins[1].ID(), 0, key), &bob, "input 1 owner predicate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dumpStore(t, a)
			signer := w.alice
			if tc.signer != nil {
				signer = *tc.signer
			}
			rc := w.run(t, a, tc.tx, signer)
			if rc.Status != phases.Refused || !strings.Contains(rc.Reason, tc.want) {
				t.Fatalf("got %s %q, want %q", rc.Status, rc.Reason, tc.want)
			}
			if dumpStore(t, a) != before {
				t.Fatal("the refused export changed the store")
			}
		})
	}
}

// FuzzDecodeClaim: whatever decodes re-encodes to the same bytes, and
// nothing panics.
func FuzzDecodeClaim(f *testing.F) {
	w := newWorld(f, 2)
	rec, _ := w.exported(f, 0, w.ins[1].ID())
	good := claimOf(f, w.ins[0], rec).Encode()
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(append([]byte{}, good...), 0))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := chain.DecodeClaim(data)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Encode(), data) {
			t.Fatalf("claim re-encodes differently")
		}
	})
}

// TestImportClaimFile: a claim written to a file and altered byte by byte
// is refused by ImportClaim with a reason naming what is wrong, and the
// destination's store is unchanged; the genuine file imports once.
func TestImportClaimFile(t *testing.T) {
	w := newWorld(t, 3)
	a, b, c := w.ins[0], w.ins[1], w.ins[2]
	rec, _ := w.exported(t, 0, b.ID())
	toC, _ := w.exported(t, 0, c.ID())
	write := func(cl *chain.Claim) string {
		path := filepath.Join(t.TempDir(), "claim.bin")
		if err := os.WriteFile(path, cl.Encode(), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cl, err := a.ClaimFor(rec.ID())
	if err != nil {
		t.Fatal(err)
	}
	good := write(cl)
	forC := write(claimOf(t, a, toC))
	// Offsets in the file (docs/formats/cross-instance.md, "Claim").
	// The record comes first (version, from, to, ...), the proof last, and
	// the manifest before the proof's length ends with the signature.
	from, to := 1+4+1, 1+4+1+32
	proof := len(cl.Encode()) - len(cl.Proof.Encode())
	sig := proof - 4 - 64
	sibling := proof + 1 + 4 + (len(cl.Proof.Siblings)+7)/8 // the first non-empty sibling
	alter := func(f func(b []byte) []byte) func() []byte {
		return func() []byte {
			raw, err := os.ReadFile(good)
			if err != nil {
				t.Fatal(err)
			}
			return f(raw)
		}
	}
	flip := func(at int) func() []byte {
		return alter(func(b []byte) []byte { b[at] ^= 1; return b })
	}
	cases := []struct {
		name string
		file func() []byte
		want string
	}{
		{"truncated", alter(func(b []byte) []byte { return b[:len(b)-1] }), "fractal: claim: truncated input"},
		{"trailing byte", alter(func(b []byte) []byte { return append(b, 0) }), "fractal: claim: 1 trailing bytes"},
		{"another version", alter(func(b []byte) []byte { b[0] = 2; return b }), "fractal: claim: unknown version 2"},
		{"altered amount", alter(func(b []byte) []byte { return bytes.Replace(b, []byte(":100"), []byte(":900"), 1) }),
			"the export record differs from the one instance"},
		{"altered destination", flip(to), "is addressed to instance"},
		{"altered source", flip(from), "is not in the trust file (fractal peers add)"},
		{"altered signature", flip(sig), "the manifest's signature does not verify"},
		{"altered proof", flip(sibling), "the inclusion proof does not verify against the manifest of height"},
		{"addressed to c", func() []byte { raw, _ := os.ReadFile(forC); return raw }, "not this one"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := dumpStore(t, b)
			rc, blk, err := b.ImportClaim(context.Background(), tc.file(), w.alice)
			got := ""
			switch {
			case err != nil:
				got = err.Error()
			case rc.Status == phases.Refused && rc.Phase == phases.PhaseAdmission && blk == nil:
				got = rc.Reason
			default:
				t.Fatalf("accepted: %s", rc.Status)
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if after := dumpStore(t, b); after != before {
				t.Fatalf("the refused import changed the store:\n%s", diffLines(before, after))
			}
		})
	}

	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	rc, blk, err := b.ImportClaim(context.Background(), raw, w.alice)
	if err != nil || rc.Err() != nil || blk == nil {
		t.Fatalf("genuine claim: %v %v", err, rc.Err())
	}
	if p, id := rc.Outputs[0].Key.Provenance, a.ID(); len(p) != 1 || !bytes.Equal(p[0], id[:]) {
		t.Fatalf("provenance %x, want [a]", p)
	}
	before := dumpStore(t, b)
	_, _, err = b.ImportClaim(context.Background(), raw, w.alice)
	if want := fmt.Sprintf("fractal: import: export %x was already imported", rec.ID()); err == nil || err.Error() != want {
		t.Fatalf("second import: %v, want %q", err, want)
	}
	if dumpStore(t, b) != before {
		t.Fatal("the refused second import changed the store")
	}
}
