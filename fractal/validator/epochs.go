package validator

// This validator's keyholder party in each next epoch's DKG (decision
// 162): it deals when round 1's window opens, reads the envelopes the
// chain recorded, answers in rounds 2 and 3, submits its own envelopes as
// DKG transactions to its own mempool until a block records them, and once
// the chain decided, writes its own share of the new key from the chain's
// deals into HOME/keyholder/epoch-E. It holds its keyholder key and
// nothing else of the others'.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/dkg"
	"github.com/fractalvm/fractal/tfhe/keyholder"
)

// dealHook, in this package's tests only, replaces this validator's deal
// before it is submitted (a bad dealer).
type dealHook func(s *dkg.Session, key keys.PrivateKey, deal *dkg.Envelope) *dkg.Envelope

// epochKeyholder drives the party; step runs after each commit, in its own
// goroutine (submitting from inside Commit would wait on the mempool's
// lock that CometBFT holds there).
type epochKeyholder struct {
	n    *Node
	kh   *keyholder.Home
	log  func(string)
	hook dealHook
	held map[[32]byte]uint64 // epochs whose share the app holds, by key ID

	wake   chan struct{}
	cancel context.CancelFunc
	done   sync.WaitGroup

	party *dkg.Party // nil between DKGs
	mine  []*dkg.Envelope
}

// startEpochKeyholder starts the party's loop when the instance has epochs
// and the home a keyholder home; each commit pokes it.
func (n *Node) startEpochKeyholder(held map[[32]byte]uint64, log func(string), hook dealHook) error {
	st, err := n.in.Epochs()
	if err != nil || st == nil {
		return err
	}
	kh, err := keyholder.OpenHome(n.home + "/" + KeyholderDir)
	if err != nil {
		return err
	}
	if held == nil {
		held = map[[32]byte]uint64{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	ek := &epochKeyholder{n: n, kh: kh, log: log, hook: hook, held: held, wake: make(chan struct{}, 1), cancel: cancel}
	n.epochs = ek
	ek.done.Add(1)
	go ek.loop(ctx)
	return nil
}

// poke asks for a step; a step already asked for covers it.
func (ek *epochKeyholder) poke() {
	select {
	case ek.wake <- struct{}{}:
	default:
	}
}

func (ek *epochKeyholder) stop() {
	ek.cancel()
	ek.done.Wait()
}

func (ek *epochKeyholder) loop(ctx context.Context) {
	defer ek.done.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ek.wake:
		}
		if err := ek.step(ctx); err != nil && ctx.Err() == nil {
			ek.log(fmt.Sprintf("epoch keyholder: %v", err))
		}
	}
}

// step does what the committed state asks: settle a decided DKG, drop the
// shares nothing needs any more, start the next DKG in round 1's window,
// answer the rounds that opened, and submit what the chain lacks.
func (ek *epochKeyholder) step(ctx context.Context) error {
	in := ek.n.in
	st, err := in.Epochs()
	if err != nil || st == nil {
		return err
	}
	if ek.party != nil {
		if err := ek.settle(); err != nil {
			return err
		}
	}
	if err := ek.dropOldShares(); err != nil {
		return err
	}
	if ek.party == nil && st.Round == 1 {
		if ek.party, err = dkg.NewParty(st.Session, ek.kh.Key); err != nil {
			return err
		}
		deal, err := ek.party.Start()
		if err != nil {
			ek.party = nil
			return err
		}
		if ek.hook != nil {
			deal = ek.hook(st.Session, ek.kh.Key, deal)
		}
		ek.mine = []*dkg.Envelope{deal}
		ek.log(fmt.Sprintf("epoch %d DKG (attempt %d): dealt at height %d", st.Session.Epoch, st.Session.Attempt, st.Height+1))
	}
	p := ek.party
	if p == nil || ek.session() != st.Session.ID() {
		return nil
	}
	sid := st.Session.ID()
	recorded, err := in.DKGEnvelopes(sid)
	if err != nil {
		return err
	}
	onChain := map[[32]byte]bool{}
	for _, e := range recorded {
		onChain[e.Hash()] = true
		p.Receive(e.Encode()) // an envelope the chain recorded was checked there
	}
	for int(p.Round()) < st.Round && p.Round() < dkg.KindJustification {
		out, err := p.Next()
		if err != nil {
			return err
		}
		ek.mine = append(ek.mine, out...)
	}
	for _, e := range ek.mine {
		if onChain[e.Hash()] || int(e.Kind) > st.Round {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		r, err := ek.n.Submit(sctx, fractal.DKGTx(e.Encode()))
		cancel()
		if err == nil && r.Code != 0 {
			ek.log(fmt.Sprintf("epoch %d DKG: our %s was refused: %s", st.Session.Epoch, e.Kind, r.Log))
		}
	}
	return nil
}

// settle ends the party once the chain decided its session: with a key,
// it writes this keyholder's share of it (its own only) and gives it to
// the app; a failure is logged and the next attempt starts afresh.
func (ek *epochKeyholder) settle() error {
	in := ek.n.in
	records, err := in.EpochRecords()
	if err != nil {
		return err
	}
	var rec *fractal.EpochRecord
	for _, r := range records {
		if r.Session == ek.session() {
			rec = r
		}
	}
	if rec == nil {
		return nil
	}
	p := ek.party
	ek.party, ek.mine = nil, nil
	if rec.Key == nil {
		ek.log(fmt.Sprintf("epoch %d DKG (attempt %d) failed at height %d: %s", rec.Epoch, rec.Attempt, rec.Height, rec.Failure))
		return nil
	}
	msgs, err := in.DKGEnvelopes(rec.Session)
	if err != nil {
		return err
	}
	o, err := p.Settle(msgs)
	if err != nil {
		return fmt.Errorf("epoch %d: this validator holds no share: %w", rec.Epoch, err)
	}
	sk, err := tfhe.ShareFromDKG(rec.Key, *o.Share)
	if err != nil {
		return err
	}
	if err := ek.kh.WriteEpoch(rec.Epoch, rec.Key, sk, o.Transcript); err != nil {
		return err
	}
	ek.n.app.AddKeyShare(sk)
	ek.held[rec.Key.ID()] = rec.Epoch
	ek.log(fmt.Sprintf("epoch %d: holds share %d of key %x, in force from height %d", rec.Epoch, sk.Index, rec.Key.ID(), rec.Start))
	return nil
}

func (ek *epochKeyholder) session() [32]byte { return ek.mine[0].Session }

// dropOldShares deletes the share of every earlier epoch's key once no
// batch waits under it: after the switch no new batch is fixed under it,
// so nothing can need it again (decision 162).
func (ek *epochKeyholder) dropOldShares() error {
	in := ek.n.in
	pk, err := in.ThresholdKey()
	if err != nil {
		return err
	}
	w, err := in.Waiting()
	if err != nil {
		return err
	}
	for id, e := range ek.held {
		if id == pk.ID() || (w != nil && w.Key.ID() == id) {
			continue
		}
		if err := ek.kh.DropShare(e); err != nil {
			return err
		}
		ek.n.app.DropKeyShare(id)
		delete(ek.held, id)
		ek.log(fmt.Sprintf("epoch %d's share deleted: no batch waits under its key", e))
	}
	return nil
}
