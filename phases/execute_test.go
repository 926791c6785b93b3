package phases

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
)

func h16(h notes.Hash) string { return hex.EncodeToString(h[:8]) }

func TestTokenMintTransferOverdraftForgery(t *testing.T) {
	w := newWorld(t)
	alice, bob, carol := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	A, B, C := alice.Public(), bob.Public(), carol.Public()

	mint := w.mintTx(t, alice, A, 100, 1)
	out := w.exec(t, mint)
	accepted(t, out)
	mintID := mint.ID()
	tag := hex.EncodeToString(mintID[:8])
	minted := w.gold(A, A, 100, tag+":m")
	if len(out.Created) != 1 || out.Created[0].ID() != minted.ID() || len(out.Spent) != 0 {
		t.Fatalf("mint created %+v", out.Created)
	}
	if out.Receipt.Gas.Calculation == 0 || out.Receipt.Gas.Validity == 0 || out.Receipt.Gas.Lookup != 0 {
		t.Fatalf("gas %+v", out.Receipt.Gas)
	}

	// Alice sends 30 to Bob: 1 input, 2 outputs.
	send := w.transferTx(t, alice, []notes.Note{minted}, B, 30, 2)
	out = w.exec(t, send)
	accepted(t, out)
	stag := transferTag(minted)
	toBob, change := w.gold(A, B, 30, stag+":1"), w.gold(A, A, 70, stag+":2")
	if len(out.Created) != 2 || out.Created[0].ID() != toBob.ID() || out.Created[1].ID() != change.ID() ||
		len(out.Spent) != 1 || out.Spent[0].ID() != minted.ID() {
		t.Fatalf("transfer effects %+v", out)
	}
	if got := out.Receipt.Inputs; len(got) != 1 || got[0].ID != minted.ID() {
		t.Fatalf("receipt inputs %+v", got)
	}

	refusals := []struct {
		name string
		tx   *Tx
		pred Predicate
		want string
	}{
		{"overdraft", w.transferTx(t, bob, []notes.Note{toBob}, C, 50, 3),
			Predicate{Role: RoleApplication, Code: w.token},
			"application predicate " + h16(w.token) + ": token: " + A.String() + ":GOLD: outputs exceed inputs by 20 and the issuer has not signed"},
		{"spend another's note", w.transferTx(t, carol, []notes.Note{toBob}, C, 30, 4),
			Predicate{Role: RoleInput, Index: 1, Code: w.sig},
			"input 1 owner predicate " + h16(w.sig) + ": sig: " + "owner " + B.String() + " has not signed"},
		{"forged mint", signed(t, &Tx{
			Nonce: 5, GasLimit: 1_000_000, Write: notes.ConstraintSet{w.ownerPrefix(B)},
			Calculation: []byte(fmt.Sprintf(`return {{application=%q, owner=%q, key=%q, value=%q}}`,
				hex.EncodeToString(w.token[:]), hex.EncodeToString(w.sig[:]), B.String()+":forged", A.String()+":GOLD:1000")),
			Signers: []keys.PublicKey{B},
		}, bob), Predicate{Role: RoleApplication, Code: w.token},
			"application predicate " + h16(w.token) + ": token: " + A.String() + ":GOLD: outputs exceed inputs by 1000 and the issuer has not signed"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			before := w.st.dump()
			out := w.exec(t, r.tx)
			rc := out.Receipt
			if rc.Status != Refused || rc.Phase != PhaseValidity || rc.Predicate != r.pred || rc.Reason != r.want {
				t.Fatalf("receipt %s %s %+v %q\nwant %+v %q", rc.Status, rc.Phase, rc.Predicate, rc.Reason, r.pred, r.want)
			}
			if out.Spent != nil || out.Created != nil || !bytes.Equal(before, w.st.dump()) {
				t.Fatal("refusal had effects")
			}
		})
	}
}

// TestRefusals walks the refusals of issue 3 that belong to phases 1–3: each
// gives its exact reason, no effects, and leaves the state as it was.
func TestRefusals(t *testing.T) {
	w := newWorld(t)
	alice, bob := testKey(t, 1), testKey(t, 2)
	A := alice.Public()
	held := w.gold(A, A, 10, "held")
	w.st.put(held)
	other := w.gold(A, bob.Public(), 10, "other")
	w.st.put(other)
	hk, ok := keyOf(held), keyOf(other)
	hkText := hk.String()
	app, sig := hex.EncodeToString(w.token[:]), hex.EncodeToString(w.sig[:])
	loop := w.code.deploy(t, "loop", []byte("while true do end"))
	one := w.code.deploy(t, "one", []byte("return 1"))
	unknown := sha256.Sum256([]byte("never deployed"))

	// note renders a Lua note table literal.
	note := func(appH, ownerH notes.Hash, key, value string) string {
		return fmt.Sprintf("{application=%q, owner=%q, key=%q, value=%q}", hex.EncodeToString(appH[:]), hex.EncodeToString(ownerH[:]), key, value)
	}
	base := func(lookup, calc string) *Tx {
		return &Tx{Nonce: 1, GasLimit: 200_000, Read: notes.ConstraintSet{notes.ExactPattern(hk)},
			Write:  notes.ConstraintSet{notes.ExactPattern(hk), mustPattern(t, "/"+app+"/*/*")},
			Lookup: []byte(lookup), Calculation: []byte(calc), Signers: []keys.PublicKey{A}}
	}
	spendHeld := fmt.Sprintf("return {%q}", hkText)
	keep := "return {" + note(w.token, w.sig, A.String()+":new", A.String()+":GOLD:10") + "}"

	cases := []struct {
		name  string
		tx    func() *Tx
		phase Phase
		pred  Predicate
		want  string
	}{
		{"unsigned", func() *Tx { return base(spendHeld, keep) }, PhaseAdmission, Predicate{}, "transaction is unsigned"},
		{"signer missing", func() *Tx {
			tx := base(spendHeld, keep)
			tx.Signers = append(tx.Signers, bob.Public())
			return signed(t, tx, alice)
		}, PhaseAdmission, Predicate{}, "signer 2 (" + bob.Public().String() + ") has not signed"},
		{"wrongly signed", func() *Tx {
			tx := signed(t, base(spendHeld, keep), alice)
			tx.Nonce++
			return tx
		}, PhaseAdmission, Predicate{}, "signature of signer 1 (" + A.String() + ") does not verify"},
		{"get outside read constraints", func() *Tx {
			return signed(t, base(fmt.Sprintf("local n = get(%q) return {}", ok.String()), keep), alice)
		}, PhaseLookup, Predicate{}, "lookup:1: aborted: get " + ok.String() + ": outside the read constraints"},
		{"pcall cannot catch the abort", func() *Tx {
			return signed(t, base(fmt.Sprintf("pcall(get, %q) return {}", ok.String()), keep), alice)
		}, PhaseLookup, Predicate{}, "lookup:1: aborted: get " + ok.String() + ": outside the read constraints"},
		{"scan outside read constraints", func() *Tx {
			return signed(t, base(`return scan("*/*/*/ff*")`, keep), alice)
		}, PhaseLookup, Predicate{}, "lookup:1: aborted: scan */*/*/ff*: outside the read constraints"},
		{"input outside read constraints", func() *Tx {
			return signed(t, base(fmt.Sprintf("return {%q}", ok.String()), keep), alice)
		}, PhaseLookup, Predicate{}, "input 1 at " + ok.String() + " is outside the read constraints"},
		{"input outside write constraints", func() *Tx {
			tx := base(spendHeld, keep)
			tx.Write = notes.ConstraintSet{w.ownerPrefix(bob.Public())}
			return signed(t, tx, alice)
		}, PhaseLookup, Predicate{}, "input 1 at " + hkText + " is outside the write constraints (spending is a write)"},
		{"input twice", func() *Tx {
			return signed(t, base(fmt.Sprintf("return {%q, %q}", hkText, hkText), keep), alice)
		}, PhaseLookup, Predicate{}, "input 2 at " + hkText + " repeats input 1"},
		{"spend a note that is gone", func() *Tx {
			gone := w.gold(A, A, 10, "gone")
			tx := base(fmt.Sprintf("return {%q}", keyOf(gone).String()), keep)
			tx.Read = append(tx.Read, w.ownerPrefix(A))
			return signed(t, tx, alice)
		}, PhaseLookup, Predicate{}, "input 1: no live note at " + w.keyText(A, "gone")},
		{"lookup error", func() *Tx { return signed(t, base(`error("boom")`, keep), alice) },
			PhaseLookup, Predicate{}, "lookup:1: boom"},
		{"lookup returns a number", func() *Tx { return signed(t, base(`return 5`, keep), alice) },
			PhaseLookup, Predicate{}, "lookup code returned a number, want a list"},
		{"output at an occupied key", func() *Tx {
			w.st.put(w.gold(A, A, 5, "taken"))
			return signed(t, base(spendHeld, "return {"+note(w.token, w.sig, A.String()+":taken", A.String()+":GOLD:10")+"}"), alice)
		}, PhaseCalculation, Predicate{}, "output 1 at " + w.keyText(A, "taken") + ": a live note is already there"},
		{"output outside write constraints", func() *Tx {
			return signed(t, base(spendHeld, "return {"+note(w.escrow, w.sig, "x", "y")+"}"), alice)
		}, PhaseCalculation, Predicate{}, "output 1 at /" + hex.EncodeToString(w.escrow[:]) + "/" + sig + "/78 is outside the write constraints"},
		{"output twice", func() *Tx {
			n := note(w.token, w.sig, A.String()+":new", A.String()+":GOLD:5")
			return signed(t, base(spendHeld, "return {"+n+","+n+"}"), alice)
		}, PhaseCalculation, Predicate{}, "output 2 at " + w.keyText(A, "new") + " repeats output 1"},
		{"outputs over the byte limit", func() *Tx {
			// One 60,000-byte string referenced by 20 outputs: cheap in gas,
			// 1.2 MB to write.
			calc := fmt.Sprintf(`local v = string.rep("x", 60000) local out = {} for i = 1, 20 do out[i] = {application=%q, owner=%q, key="big"..i, value=v} end return out`, app, sig)
			tx := base(spendHeld, calc)
			tx.GasLimit = 10_000_000
			return signed(t, tx, alice)
		}, PhaseCalculation, Predicate{}, "outputs 1..18 hold 1080081 bytes of keys and values, over the limit of 1048576 for one transaction"},
		{"output with provenance", func() *Tx {
			return signed(t, base(spendHeld, fmt.Sprintf(`return {{provenance={"aa"}, application=%q, owner=%q, key="k", value="v"}}`, app, sig)), alice)
		}, PhaseCalculation, Predicate{}, "output 1 has provenance; notes created here must have none"},
		{"unknown code", func() *Tx {
			return signed(t, base(spendHeld, "return {"+note(w.token, unknown, A.String()+":new", A.String()+":GOLD:10")+"}"), alice)
		}, PhaseValidity, Predicate{Role: RoleOutput, Index: 1, Code: unknown},
			"output 1 owner predicate " + h16(unknown) + ": unknown code " + hex.EncodeToString(unknown[:])},
		{"predicate out of gas", func() *Tx {
			return signed(t, base(spendHeld, "return {"+note(w.token, loop, A.String()+":new", A.String()+":GOLD:10")+"}"), alice)
		}, PhaseValidity, Predicate{Role: RoleOutput, Index: 1, Code: loop}, "output 1 owner predicate " + h16(loop) + ": loop:1: out of gas (limit REMAINING)"},
		{"predicate returns 1", func() *Tx {
			return signed(t, base(spendHeld, "return {"+note(w.token, one, A.String()+":new", A.String()+":GOLD:10")+"}"), alice)
		}, PhaseValidity, Predicate{Role: RoleOutput, Index: 1, Code: one}, "output 1 owner predicate " + h16(one) + ": returned a number, want true"},
		{"predicate error", func() *Tx {
			return signed(t, base(spendHeld, "return {"+note(w.token, w.sig, "nokey", A.String()+":GOLD:10")+"}"), alice)
		}, PhaseValidity, Predicate{Role: RoleOutput, Index: 1, Code: w.sig},
			"output 1 owner predicate " + h16(w.sig) + ": sig: note key does not start with '<owner public key>:'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := tc.tx()
			before := w.st.dump()
			out, err := Execute(w.st, w.code, w.pool, tx)
			if err != nil {
				t.Fatal(err)
			}
			rc := out.Receipt
			// Each predicate gets an equal share of what lookup and calculation
			// left: here one per input and output note plus the token application.
			share := (tx.GasLimit - rc.Gas.Lookup - rc.Gas.Calculation) / uint64(len(rc.Inputs)+len(rc.Outputs)+1)
			want := strings.ReplaceAll(tc.want, "REMAINING", fmt.Sprint(share))
			if rc.Status != Refused || rc.Phase != tc.phase || rc.Predicate != tc.pred || rc.Reason != want {
				t.Fatalf("got %s in %s by %+v: %q\nwant %s by %+v: %q", rc.Status, rc.Phase, rc.Predicate, rc.Reason, tc.phase, tc.pred, want)
			}
			if out.Spent != nil || out.Created != nil || !bytes.Equal(before, w.st.dump()) {
				t.Fatal("refusal had effects")
			}
			if rc.TxID != tx.ID() {
				t.Fatal("receipt names another transaction")
			}
			if _, err := DecodeReceipt(rc.Encode()); err != nil {
				t.Fatalf("receipt does not decode: %v", err)
			}
		})
	}
}

func (w *world) keyText(owner keys.PublicKey, tag string) string {
	n := w.gold(owner, owner, 1, tag)
	return n.StateKey().String()
}

func TestScanOrderAndLog(t *testing.T) {
	w := newWorld(t)
	alice := testKey(t, 1)
	A := alice.Public()
	for _, tag := range []string{"c", "a", "b"} {
		w.st.put(w.gold(A, A, 1, tag))
	}
	tx := &Tx{Nonce: 1, GasLimit: 500_000, Read: notes.ConstraintSet{w.ownerPrefix(A)}, Write: notes.ConstraintSet{w.ownerPrefix(A)},
		Lookup: []byte(`local found = scan("` + w.ownerPrefix(A).String() + `")
for i, n in ipairs(found) do print(n.key) end
return found`),
		Calculation: []byte(fmt.Sprintf("print(#inputs) return {%s}", fmt.Sprintf("{application=%q, owner=%q, key=%q, value=%q}",
			hex.EncodeToString(w.token[:]), hex.EncodeToString(w.sig[:]), A.String()+":all", A.String()+":GOLD:3"))),
		Signers: []keys.PublicKey{A}}
	out := w.exec(t, signed(t, tx, alice))
	accepted(t, out)
	want := []string{"lookup: " + A.String() + ":a", "lookup: " + A.String() + ":b", "lookup: " + A.String() + ":c", "calculation: 3"}
	if strings.Join(out.Receipt.Log, "\n") != strings.Join(want, "\n") {
		t.Fatalf("log %q", out.Receipt.Log)
	}
	for i, tag := range []string{"a", "b", "c"} {
		if got := string(out.Spent[i].Key); got != A.String()+":"+tag {
			t.Fatalf("input %d is %s", i+1, got)
		}
	}
}

func TestEscrow(t *testing.T) {
	w := newWorld(t)
	alice, bob, carol := testKey(t, 1), testKey(t, 2), testKey(t, 3)
	A, B := alice.Public(), bob.Public()
	lock := sha256.Sum256([]byte("s3cret"))
	held := notes.Note{Application: w.token, Owner: w.escrow,
		Key:   []byte(fmt.Sprintf("escrow:%s:%s:%x:%x:1", A, B, lock, w.sig)),
		Value: []byte(A.String() + ":GOLD:40")}
	w.st.put(held)
	release := func(signer keys.PrivateKey, extra string, to keys.PublicKey) *Tx {
		return signed(t, &Tx{Nonce: 1, GasLimit: 1_000_000,
			Read:   notes.ConstraintSet{notes.ExactPattern(held.StateKey())},
			Write:  notes.ConstraintSet{notes.ExactPattern(held.StateKey()), w.ownerPrefix(to)},
			Lookup: []byte(fmt.Sprintf("return {%q}", held.StateKey().String())), Calculation: readExample(t, "escrow/release.lua"),
			Extradata: []byte(extra), Signers: []keys.PublicKey{signer.Public()}}, signer)
	}
	wrong := release(carol, "guess", B)
	out, err := Execute(w.st, w.code, w.pool, wrong)
	if err != nil {
		t.Fatal(err)
	}
	if want := "input 1 owner predicate " + h16(w.escrow) + ": escrow: release to the payee needs the payer's signature or the secret"; out.Receipt.Reason != want {
		t.Fatalf("wrong secret: %q", out.Receipt.Reason)
	}
	refundBySelf := release(alice, "payer", A)
	out, _ = Execute(w.st, w.code, w.pool, refundBySelf)
	if want := "input 1 owner predicate " + h16(w.escrow) + ": escrow: refund to the payer needs the payee's signature"; out.Receipt.Reason != want {
		t.Fatalf("refund signed by the payer: %q", out.Receipt.Reason)
	}
	// Anyone holding the secret releases it to Bob.
	out = w.exec(t, release(carol, "s3cret", B))
	accepted(t, out)
	if got := out.Created[0]; !bytes.HasPrefix(got.Key, []byte(B.String()+":")) || got.Owner != w.sig || string(got.Value) != A.String()+":GOLD:40" {
		t.Fatalf("released %q %q", got.Key, got.Value)
	}
}
