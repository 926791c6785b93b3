package validator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/cometbft/cometbft/types"
	"golang.org/x/sync/errgroup"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe"
	"github.com/fractalvm/fractal/tfhe/keyholder"
)

// KeyholderDir is the keyholder home inside a validator's home
// (decision 160): HOME/keyholder/keyholder.key, and its own share of each
// epoch's key in HOME/keyholder/epoch-E/.
const KeyholderDir = "keyholder"

// GenesisEpoch is the epoch of the key the validators make at genesis.
const GenesisEpoch = 1

// genesisDKGTimeout bounds each round of the genesis DKG: every party is on
// this machine.
const genesisDKGTimeout = 30 * time.Second

// Threshold is the k of a threshold key shared by n validators: ⌊2n/3⌋+1,
// the shares a proposer must carry at the next height (decision 136 item 5).
func Threshold(n int) int { return fractal.KeyholderThreshold(n) }

// genesisDKG gives every validator home a keyholder home (HOME/keyholder)
// and runs the DKG among them at genesis, each validator's party its own
// state machine with its own key and endpoint (tfhe/dkg/direct on
// 127.0.0.(i+1), a free port), keyholder i+1 being validator i. Each home
// ends holding its own share only. It returns the key, which every party
// must have made alike, and the keyholders' keys in order.
func genesisDKG(ctx context.Context, homes []string, instance [32]byte) (*tfhe.PublicKey, []keys.PublicKey, error) {
	n := len(homes)
	if n < 2 {
		return nil, nil, fmt.Errorf("a threshold key needs at least 2 validators, not %d", n)
	}
	khs := make([]*keyholder.Home, n)
	lns := make([]net.Listener, n)
	defer func() {
		for _, ln := range lns {
			if ln != nil {
				ln.Close() // RunDKG closes those it was given; a second Close is harmless
			}
		}
	}()
	peers := &keyholder.Peers{Keys: make([]keys.PublicKey, n), Addrs: make([]string, n)}
	for i, home := range homes {
		var err error
		if khs[i], err = keyholder.Init(filepath.Join(home, KeyholderDir)); err != nil {
			return nil, nil, err
		}
		ip, _, _ := devnetAddr(i, 1024)
		if lns[i], err = net.Listen("tcp", ip+":0"); err != nil {
			return nil, nil, fmt.Errorf("DKG endpoint of v%d: %w", i, err)
		}
		peers.Keys[i], peers.Addrs[i] = khs[i].Key.Public(), lns[i].Addr().String()
	}
	results := make([]*keyholder.DKGResult, n)
	g, gctx := errgroup.WithContext(ctx)
	for i := range n {
		g.Go(func() error {
			res, err := khs[i].RunDKG(gctx, keyholder.DKGConfig{Instance: instance, Epoch: GenesisEpoch, N: n, K: Threshold(n),
				Peers: peers, RoundTimeout: genesisDKGTimeout, Listener: lns[i]})
			if err != nil {
				return fmt.Errorf("DKG party of v%d: %w", i, err)
			}
			results[i] = res
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	pk := results[0].Key
	for i, r := range results {
		if r.Key.ID() != pk.ID() {
			return nil, nil, fmt.Errorf("DKG: v0 and v%d made different keys", i)
		}
		if len(r.Outcome.Holders) != n {
			return nil, nil, fmt.Errorf("DKG: keyholders %v hold no share (faults: %v)", missing(r.Outcome.Holders, n), r.Outcome.Faults)
		}
	}
	return pk, peers.Keys, nil
}

// missing lists the indexes 1..n not in have.
func missing(have []int, n int) []int {
	in := make(map[int]bool, len(have))
	for _, i := range have {
		in[i] = true
	}
	var out []int
	for i := 1; i <= n; i++ {
		if !in[i] {
			out = append(out, i)
		}
	}
	return out
}

// attachGenesisKey stores pk, with the encrypted expiry window, as the
// threshold key of the instance in every home, with the epoch rules (nil:
// none).
func attachGenesisKey(homes []string, pk *tfhe.PublicKey, expiry uint64, epochs *fractal.EpochRules) error {
	for _, home := range homes {
		in, err := fractal.Open(home)
		if err != nil {
			return err
		}
		err = in.AttachGenesisThresholdKey(pk, expiry)
		if err == nil && epochs != nil {
			err = in.AttachGenesisEpochs(epochs)
		}
		if cerr := in.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// loadKeyShares gives app this validator's shares, when the instance has
// a threshold key: of the genesis key without epochs; with epochs, of the
// key in force and of each earlier epoch whose share file is still there
// (a batch fixed under it may wait; epochKeyholder drops it after). A
// validator whose home holds no share still votes, with empty extensions.
// It returns the epochs whose shares it gave, by key ID.
func loadKeyShares(home string, in *fractal.Instance, app *abci.App) (map[[32]byte]uint64, error) {
	pk, err := in.ThresholdKey()
	if errors.Is(err, fractal.ErrNoThresholdKey) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	kh, err := keyholder.OpenHome(filepath.Join(home, KeyholderDir))
	if err != nil {
		return nil, err
	}
	st, err := in.Epochs()
	if err != nil {
		return nil, err
	}
	if st == nil { // no epochs: the genesis share, which must be there
		sk, err := kh.Share(GenesisEpoch)
		if err != nil {
			return nil, err
		}
		if sk.PK.ID() != pk.ID() {
			return nil, fmt.Errorf("%s holds a share of key %x, the instance's is %x", kh.EpochDir(GenesisEpoch), sk.PK.ID(), pk.ID())
		}
		app.AddKeyShare(sk)
		return map[[32]byte]uint64{pk.ID(): GenesisEpoch}, nil
	}
	held := map[[32]byte]uint64{}
	for e := uint64(GenesisEpoch); e <= st.Epoch; e++ {
		sk, err := kh.Share(e)
		if err != nil {
			continue // missed that epoch's DKG, or dropped its share
		}
		if _, err := in.ArchivedKey(sk.PK.ID()); err != nil {
			return nil, fmt.Errorf("%s holds a share of key %x, which the instance never held", kh.EpochDir(e), sk.PK.ID())
		}
		app.AddKeyShare(sk)
		held[sk.PK.ID()] = e
	}
	return held, nil
}

// GenesisThresholdKey reads a validator-set genesis file (bounded) and
// returns the threshold key its app_state names with the instance's ID:
// what a client seals encrypted transactions to.
func GenesisThresholdKey(path string) (*tfhe.PublicKey, [32]byte, error) {
	raw, err := inputfile.Read(path, maxGenesisFile)
	if err != nil {
		return nil, [32]byte{}, err
	}
	doc, err := types.GenesisDocFromJSON(raw)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("%s: %w", path, err)
	}
	st, err := abci.ParseAppState(doc.AppState)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("%s: app_state: %w", path, err)
	}
	if st.ThresholdKey == nil {
		return nil, [32]byte{}, fmt.Errorf("%s names no threshold key (fractal devnet --encrypted makes one)", path)
	}
	return st.ThresholdKey, st.Trust.ID, nil
}
