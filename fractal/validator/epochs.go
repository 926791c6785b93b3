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
	"errors"
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
// before it is submitted (a bad dealer). The saved party keeps the deal
// the party made, so a bad dealer is not to be restarted mid-DKG.
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
	// received holds the hashes of the recorded envelopes handed to the
	// party receivedBy already.
	receivedBy *dkg.Party
	received   map[[32]byte]bool
	// resumed is set once the party a restart interrupted was looked for;
	// unresumable names the session whose saved party could not be
	// restored, in which this validator must not deal again.
	resumed     bool
	unresumable [32]byte
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
	if !ek.resumed {
		ek.resumed = true
		if err := ek.resume(st); err != nil {
			ek.log(fmt.Sprintf("epoch keyholder: %v", err))
		}
	}
	if ek.party != nil {
		if err := ek.settle(); err != nil {
			return err
		}
	}
	if err := ek.dropOldShares(); err != nil {
		return err
	}
	sid := st.Session.ID()
	if ek.party == nil && st.Round == 1 && sid != ek.unresumable {
		if err := ek.deal(st); err != nil {
			return err
		}
	}
	p := ek.party
	if p == nil || ek.session() != sid {
		return nil
	}
	recorded, err := in.DKGEnvelopes(sid)
	if err != nil {
		return err
	}
	if ek.receivedBy != p {
		ek.receivedBy, ek.received = p, map[[32]byte]bool{}
	}
	onChain := map[[32]byte]bool{}
	for _, e := range recorded {
		h := e.Hash()
		onChain[h] = true
		if !ek.received[h] { // step runs after every commit: each envelope's signature is checked once
			ek.received[h] = true
			p.Receive(e.Encode()) // an envelope the chain recorded was checked there
		}
	}
	if int(p.Round()) < st.Round && p.Round() < dkg.KindJustification {
		for int(p.Round()) < st.Round && p.Round() < dkg.KindJustification {
			out, err := p.Next()
			if err != nil {
				return err
			}
			ek.mine = append(ek.mine, out...)
		}
		if err := ek.save(); err != nil { // before its answers leave
			return err
		}
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

// deal starts this keyholder's party in the DKG of st and saves it before
// its deal leaves. It never deals twice in a session: a deal of its own
// the chain recorded (a party lost with its state) keeps it out.
func (ek *epochKeyholder) deal(st *fractal.EpochStatus) error {
	recorded, err := ek.n.in.DKGEnvelopes(st.Session.ID())
	if err != nil {
		return err
	}
	self := st.Session.Index(ek.kh.Key.Public())
	for _, e := range recorded {
		if e.Kind == dkg.KindDeal && int(e.From) == self {
			ek.unresumable = st.Session.ID()
			ek.log(fmt.Sprintf("epoch %d DKG (attempt %d): the chain holds a deal of ours whose party is lost; not dealing again", st.Session.Epoch, st.Session.Attempt))
			return nil
		}
	}
	p, err := dkg.NewParty(st.Session, ek.kh.Key)
	if err != nil {
		return err
	}
	deal, err := p.Start()
	if err != nil {
		return err
	}
	if ek.hook != nil {
		deal = ek.hook(st.Session, ek.kh.Key, deal)
	}
	ek.party, ek.mine = p, []*dkg.Envelope{deal}
	if err := ek.save(); err != nil {
		ek.party, ek.mine = nil, nil // nothing left: dealing again later is no equivocation
		return err
	}
	ek.log(fmt.Sprintf("epoch %d DKG (attempt %d): dealt at height %d", st.Session.Epoch, st.Session.Attempt, st.Height+1))
	return nil
}

// save writes the party's state into the keyholder home (decision 175).
func (ek *epochKeyholder) save() error {
	state, err := ek.party.State()
	if err != nil {
		return err
	}
	return ek.kh.SaveParty(state)
}

// resume rebuilds the party a restart interrupted from the state saved in
// the keyholder home: of the DKG in progress (the chain's envelopes then
// bring it up to date), or of one the chain decided since (settle ends
// it). A state that cannot be restored is kept for its operator, and this
// validator does not deal again in its session.
func (ek *epochKeyholder) resume(st *fractal.EpochStatus) error {
	state, err := ek.kh.LoadParty()
	if err != nil || state == nil {
		return err
	}
	sid, err := dkg.StateSession(state)
	if err != nil {
		return err
	}
	s := st.Session
	if sid != s.ID() {
		if s, err = ek.decidedSession(sid); err != nil || s == nil {
			if err == nil {
				ek.log("a saved DKG party of no session this chain runs or decided: deleted")
				err = ek.kh.DropParty()
			}
			return err
		}
	}
	p, err := dkg.ResumeParty(s, ek.kh.Key, state)
	if err != nil {
		ek.unresumable = sid
		return fmt.Errorf("epoch %d DKG (attempt %d): the saved party is kept, not resumed: %w", s.Epoch, s.Attempt, err)
	}
	ek.party, ek.mine = p, p.Own()
	ek.log(fmt.Sprintf("epoch %d DKG (attempt %d): party resumed in round %d", s.Epoch, s.Attempt, p.Round()))
	return nil
}

// decidedSession is the session of the DKG attempt with ID sid the chain
// decided, nil when none.
func (ek *epochKeyholder) decidedSession(sid [32]byte) (*dkg.Session, error) {
	in := ek.n.in
	records, err := in.EpochRecords()
	if err != nil {
		return nil, err
	}
	rules, err := in.EpochRules()
	if err != nil {
		return nil, err
	}
	for _, r := range records {
		if r.Session == sid {
			return dkg.NewSession(dkg.Session{Instance: in.ID(), Epoch: r.Epoch, Attempt: r.Attempt,
				K: fractal.KeyholderThreshold(len(rules.Keyholders)), Keys: rules.Keyholders})
		}
	}
	return nil, nil
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
		return ek.kh.DropParty()
	}
	if sk, err := ek.kh.Share(rec.Epoch); err == nil && sk.PK.ID() == rec.Key.ID() { // written before a restart
		return ek.kh.DropParty()
	}
	msgs, err := in.DKGEnvelopes(rec.Session)
	if err != nil {
		return err
	}
	o, err := p.Settle(msgs)
	if err != nil {
		return errors.Join(fmt.Errorf("epoch %d: this validator holds no share: %w", rec.Epoch, err), ek.kh.DropParty())
	}
	sk, err := tfhe.ShareFromDKG(rec.Key, *o.Share)
	if err != nil {
		return err
	}
	if err := ek.kh.WriteEpoch(rec.Epoch, rec.Key, sk, o.Transcript); err != nil {
		return err
	}
	if err := ek.kh.DropParty(); err != nil { // its secret polynomial is in the share now
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
