package wallet

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/fractalvm/fractal/circuits"
	"github.com/fractalvm/fractal/circuits/note"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/zk"
)

// GasLimit is the gas limit of the transactions the wallet builds: enough
// for the pool's lookup, calculation and predicates with eight token notes.
const GasLimit = 5_000_000

func noteNullifier(k *Keys, n note.Note) fr.Element {
	return note.Nullifier(k.Spend.NullifierKey(), n.Rho)
}

func assetName(b *shielded.Bundle) string { return hex.EncodeToString(b.App[:]) + "/" + b.Token }

// Token names a transparent token: the token application and
// "<issuer>:<symbol>".
type Token struct {
	App  notes.Hash
	Name string
}

// Asset is the token's shielded asset.
func (t Token) Asset() note.Asset { return shielded.AssetOf(t.App, t.Name) }

// poolKey is the state key of the token's pool note.
func (t Token) poolKey() notes.StateKey {
	return notes.StateKey{Application: t.App, Owner: shielded.PoolOwner, Key: []byte("shielded-pool:" + t.Name)}
}

// plan is one shielded transaction before proving.
type plan struct {
	token  Token
	net    int64
	spends [2]circuits.Spend
	outs   [2]circuits.Output
	to     [2]Address
	args   []string
	signer keys.PrivateKey
	read   notes.ConstraintSet
	write  notes.ConstraintSet
}

// Shield moves amount of token from the transparent notes in (owned by
// signer's key, of the token application) into a shielded note for to.
// signer signs; the change of in goes back to signer's key. ctx is checked
// before proving (which gnark cannot stop part-way).
func (w *Wallet) Shield(ctx context.Context, pk *zk.Keys, token Token, amount uint64, in []*notes.Note, signer keys.PrivateKey, to Address) (*phases.Tx, error) {
	if amount == 0 || amount > shielded.MaxAmount {
		return nil, fmt.Errorf("wallet: shield: amount %d outside 1..%d", amount, shielded.MaxAmount)
	}
	if len(in) == 0 || len(in) > shielded.MaxShieldIns {
		return nil, fmt.Errorf("wallet: shield: %d token notes, want 1..%d", len(in), shielded.MaxShieldIns)
	}
	p := &plan{token: token, net: int64(amount), signer: signer}
	p.read = notes.ConstraintSet{notes.ExactPattern(token.poolKey())}
	for _, n := range in {
		k := n.StateKey()
		p.args = append(p.args, k.String())
		p.read = append(p.read, notes.ExactPattern(k))
	}
	p.write = append(append(notes.ConstraintSet{}, p.read...),
		notes.PatternFromKeyPrefix(notes.StateKey{Application: token.App, Owner: in[0].Owner, Key: []byte(signer.Public().String() + ":")}))
	for i := range p.spends {
		d, err := circuits.NewDummySpend(rand.Reader, token.Asset())
		if err != nil {
			return nil, err
		}
		p.spends[i] = d
	}
	p.to = [2]Address{to, w.Keys.Address()}
	p.outs[0].Value = amount
	return w.prove(ctx, pk, p)
}

// Transfer sends amount of token from the wallet's notes to to, with the
// change back to the wallet. ctx is checked before proving.
func (w *Wallet) Transfer(ctx context.Context, pk *zk.Keys, token Token, amount uint64, to Address) (*phases.Tx, error) {
	p, err := w.spend(token, amount, 0)
	if err != nil {
		return nil, fmt.Errorf("wallet: transfer: %w", err)
	}
	p.to = [2]Address{to, w.Keys.Address()}
	p.outs[0].Value, p.outs[1].Value = amount, p.outs[1].Value-amount
	return w.prove(ctx, pk, p)
}

// Unshield moves amount of token from the wallet's notes to a transparent
// token note of recipient, owned by the predicate recipientOwner (for
// example examples/sig/sig.lua), with the change back to the wallet. ctx is
// checked before proving.
func (w *Wallet) Unshield(ctx context.Context, pk *zk.Keys, token Token, amount uint64, recipient keys.PublicKey, recipientOwner notes.Hash) (*phases.Tx, error) {
	if amount > shielded.MaxAmount {
		return nil, fmt.Errorf("wallet: unshield: amount %d over %d", amount, shielded.MaxAmount)
	}
	p, err := w.spend(token, amount, -int64(amount))
	if err != nil {
		return nil, fmt.Errorf("wallet: unshield: %w", err)
	}
	p.to = [2]Address{w.Keys.Address(), w.Keys.Address()}
	p.outs[0].Value, p.outs[1].Value = p.outs[1].Value-amount, 0
	p.args = []string{recipient.String(), hex.EncodeToString(recipientOwner[:])}
	p.read = notes.ConstraintSet{notes.ExactPattern(token.poolKey())}
	p.write = notes.ConstraintSet{notes.ExactPattern(token.poolKey()),
		notes.PatternFromKeyPrefix(notes.StateKey{Application: token.App, Owner: recipientOwner, Key: []byte(recipient.String() + ":")})}
	return w.prove(ctx, pk, p)
}

// spend plans spending the wallet's notes of token worth at least amount:
// the largest note if it is enough, else the two largest. It leaves their
// total in outs[1].Value for the caller to split. The transaction is signed
// by w.Signer or a one-time key.
func (w *Wallet) spend(token Token, amount uint64, net int64) (*plan, error) {
	if amount == 0 {
		return nil, errors.New("amount must be at least 1")
	}
	asset := token.Asset()
	var mine []int
	for i, o := range w.State.Notes {
		if !o.Spent && o.Note.Asset == asset {
			mine = append(mine, i)
		}
	}
	sort.SliceStable(mine, func(a, b int) bool { return w.State.Notes[mine[a]].Note.Value > w.State.Notes[mine[b]].Note.Value })
	if len(mine) > 2 {
		mine = mine[:2]
	}
	var total uint64
	for k, i := range mine {
		if k == 1 && total >= amount {
			mine = mine[:1]
			break
		}
		total += w.State.Notes[i].Note.Value
	}
	if total < amount {
		return nil, fmt.Errorf("insufficient shielded balance of %s: %d in at most two notes, %d wanted (sync first?)", token.Name, total, amount)
	}
	signer, err := w.oneTimeSigner()
	if err != nil {
		return nil, err
	}
	p := &plan{token: token, net: net, signer: signer}
	for k := range p.spends {
		if k < len(mine) {
			o := w.State.Notes[mine[k]]
			path, err := w.State.Tree.Witness(o.Position)
			if err != nil {
				return nil, err
			}
			p.spends[k] = circuits.Spend{Key: w.Keys.Spend, Note: o.Note, Path: path}
			continue
		}
		if p.spends[k], err = circuits.NewDummySpend(rand.Reader, asset); err != nil {
			return nil, err
		}
	}
	p.outs[1].Value = total
	return p, nil
}

func (w *Wallet) oneTimeSigner() (keys.PrivateKey, error) {
	if w.Signer != nil {
		return *w.Signer, nil
	}
	return keys.GenerateKey(rand.Reader)
}

// prove builds the transaction of p: output notes, ciphertexts, the
// transaction with a blank proof, its binding hash, the proof, the
// signature.
func (w *Wallet) prove(ctx context.Context, pk *zk.Keys, p *plan) (*phases.Tx, error) {
	for j := range p.outs {
		p.outs[j].Owner = p.to[j].Owner
		rcm, err := note.RandomElement(rand.Reader)
		if err != nil {
			return nil, err
		}
		p.outs[j].Rcm = rcm
	}
	root := w.State.Tree.Root()
	asset := p.token.Asset()
	wit, err := circuits.NewTransferWitness(root, p.spends, p.outs, asset, p.net, 0, fr.Element{})
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	bd := &shielded.Bundle{
		Header: shielded.Header{App: p.token.App, Pool: shielded.PoolOwner, Token: p.token.Name, Net: p.net, Args: p.args},
		Public: wit.Public,
	}
	if bd.Ciphertexts, err = Encrypt(rand.Reader, w.bundleVersion(), p.to[:], wit.Outputs[:]); err != nil {
		return nil, err
	}
	var nonce [8]byte
	if _, err := io.ReadFull(rand.Reader, nonce[:]); err != nil {
		return nil, err
	}
	tx := &phases.Tx{Nonce: binary.BigEndian.Uint64(nonce[:]), GasLimit: GasLimit, Read: p.read, Write: p.write,
		Lookup: shielded.Lookup, Calculation: shielded.Calculation, Signers: []keys.PublicKey{p.signer.Public()}}
	if tx.Extradata, err = bd.Extradata(); err != nil {
		return nil, err
	}
	h, err := shielded.BindingHash(tx)
	if err != nil {
		return nil, err
	}
	if wit, err = circuits.NewTransferWitness(root, p.spends, p.outs, asset, p.net, 0, circuits.BindingOf(h)); err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wallet: prove: %w", err)
	}
	proof, err := zk.Prove(pk, wit.Assignment)
	if err != nil {
		return nil, fmt.Errorf("wallet: prove: %w", err)
	}
	raw, err := proof.MarshalBinary()
	if err != nil {
		return nil, err
	}
	bd.Public, bd.Proof = wit.Public, [zk.ProofSize]byte(raw)
	if tx.Extradata, err = bd.Extradata(); err != nil {
		return nil, err
	}
	if err := tx.Sign(rand.Reader, p.signer); err != nil {
		return nil, err
	}
	return tx, nil
}
