package validator

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
	cmttime "github.com/cometbft/cometbft/types/time"

	"github.com/fractalvm/fractal/fractal"
	"github.com/fractalvm/fractal/fractal/abci"
	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/tfhe"
)

// DevnetOptions describe a local network of validators.
type DevnetOptions struct {
	Validators int // 1..MaxDevnetValidators
	// BasePort is validator 0's P2P port; validator i listens for P2P on
	// BasePort+2i and serves RPC on BasePort+2i+1, on 127.0.0.(i+1), and
	// its node serves the fractal.v1 API on BasePort+128+i (DevnetAPIPort).
	BasePort int
	// Instance is each validator's instance configuration (max_block_txs,
	// max_block_gas, …): the consensus limits must be the same everywhere.
	Instance fractal.Config
	// TimeoutPropose and TimeoutCommit are CometBFT's consensus timeouts
	// (3 s and 1 s when zero).
	TimeoutPropose, TimeoutCommit time.Duration
	// MempoolSize is each mempool's capacity in transactions (5,000 when 0).
	MempoolSize int
	// Trust entries go into every validator's trust file (peers.json),
	// which must be the same on all of them (decision 121).
	Trust []fractal.Peer
	// ZK, when set, is a circuit key folder (fractal shielded setup)
	// copied into every home, so the validators check shielded proofs.
	ZK string
	// Encrypted makes the validators the keyholders of a threshold key
	// (decision 160): each home gets a keyholder home, the validators run
	// the DKG among themselves, each party apart, and the key goes into
	// every instance and the genesis.
	Encrypted bool
	// EncryptedExpiryBlocks is the heights an encrypted batch may wait for
	// shares before it expires (decision 164); 0 is the default
	// (fractal.DefaultEncryptedExpiryBlocks). Only with Encrypted.
	EncryptedExpiryBlocks uint64
	// EpochBlocks, with Encrypted, starts a new threshold key every
	// EpochBlocks heights, made by a DKG among the validators in the three
	// windows of DKGWindow heights before (decision 162); 0 keeps the
	// genesis key for ever, and the genesis as it was before epochs.
	EpochBlocks, DKGWindow uint64
}

// MaxDevnetValidators bounds a local devnet: one loopback address each.
const MaxDevnetValidators = 64

// A Devnet is what WriteDevnet wrote.
type Devnet struct {
	Homes []string
	RPC   []string // each validator's RPC address, http://host:port
	API   []string // each validator's fractal.v1 API (fractal node), http://host:port
	P2P   []string // each validator's P2P address, id@host:port
	Trust fractal.Peer
	// ThresholdKey is the validators' threshold key (Encrypted), else nil.
	ThresholdKey *tfhe.PublicKey
}

// TrustFile is the file in a devnet's folder holding the instance's trust
// entry ("fractal peers add --entry", "fractal check-proof --trust").
const TrustFile = "trust.json"

// WriteDevnet writes a devnet of o.Validators validators into dir (which
// must not exist or be empty): one home per validator (dir/v0, dir/v1, …)
// with its consensus key, node key and CometBFT configuration for loopback
// (decision 125), one genesis naming the instance (its chain ID, the
// validator set with power 10 each, the instance's trust entry as
// app_state) and the instance itself, created from the same validator set
// and salt in every home; and dir/trust.json.
func WriteDevnet(dir string, o DevnetOptions) (*Devnet, error) {
	if o.Validators < 1 || o.Validators > MaxDevnetValidators {
		return nil, fmt.Errorf("validator: devnet: 1 to %d validators, not %d", MaxDevnetValidators, o.Validators)
	}
	if o.BasePort < 1024 {
		return nil, fmt.Errorf("validator: devnet: base port %d is below 1024 (ports below it need privileges)", o.BasePort)
	}
	if o.BasePort+2*MaxDevnetValidators+o.Validators > 65535 {
		return nil, fmt.Errorf("validator: devnet: base port %d leaves no room for %d validators below 65536", o.BasePort, o.Validators)
	}
	if o.EncryptedExpiryBlocks != 0 && !o.Encrypted {
		return nil, errors.New("validator: devnet: an encrypted expiry window needs a threshold key (Encrypted)")
	}
	if o.EncryptedExpiryBlocks > fractal.MaxEncryptedExpiryBlocks {
		return nil, fmt.Errorf("validator: devnet: encrypted expiry of %d blocks is over %d", o.EncryptedExpiryBlocks, uint64(fractal.MaxEncryptedExpiryBlocks))
	}
	if o.EpochBlocks > 0 && !o.Encrypted {
		return nil, errors.New("validator: devnet: epochs are those of the threshold key (--encrypted)")
	}
	if o.Encrypted && o.Validators < 2 {
		return nil, fmt.Errorf("validator: devnet: a threshold key needs at least 2 validators, not %d", o.Validators)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("validator: devnet: %s is not empty", dir)
	}
	d, err := writeDevnet(dir, o)
	if err != nil {
		return nil, fmt.Errorf("validator: devnet: %w", err)
	}
	return d, nil
}

func writeDevnet(dir string, o DevnetOptions) (*Devnet, error) {
	n := o.Validators
	d := &Devnet{}
	confs := make([]*cfg.Config, n)
	var vals []certify.Validator
	for i := range n {
		home := filepath.Join(dir, fmt.Sprintf("v%d", i))
		c := devnetConfig(home, i, o)
		if err := os.MkdirAll(filepath.Dir(c.PrivValidatorKeyFile()), 0o700); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(c.PrivValidatorStateFile()), 0o700); err != nil {
			return nil, err
		}
		pv := privval.GenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
		pv.Save()
		nk, err := p2p.LoadOrGenNodeKey(c.NodeKeyFile())
		if err != nil {
			return nil, err
		}
		v := certify.Validator{Power: 10, Name: c.Moniker}
		copy(v.PubKey[:], pv.Key.PubKey.Bytes())
		vals = append(vals, v)
		ip, p2pPort, rpcPort := devnetAddr(i, o.BasePort)
		confs[i] = c
		d.Homes = append(d.Homes, home)
		d.RPC = append(d.RPC, fmt.Sprintf("http://%s:%d", ip, rpcPort))
		d.API = append(d.API, fmt.Sprintf("http://%s:%d", ip, DevnetAPIPort(i, o.BasePort)))
		d.P2P = append(d.P2P, fmt.Sprintf("%s@%s:%d", nk.ID(), ip, p2pPort))
	}
	vs, err := certify.NewValidatorSet(vals)
	if err != nil {
		return nil, err
	}
	var salt [32]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, err
	}
	for i, home := range d.Homes {
		in, err := fractal.InitValidatorSet(home, o.Instance, vs, salt)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			d.Trust, err = in.TrustEntry()
		}
		for _, p := range o.Trust {
			if err == nil {
				_, err = in.AddPeer(p)
			}
		}
		if cerr := in.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		if o.ZK != "" {
			if err := copyDir(o.ZK, filepath.Join(home, "zk")); err != nil {
				return nil, fmt.Errorf("copy %s: %w", o.ZK, err)
			}
		}
	}
	st := &abci.AppState{Trust: d.Trust, EncryptedExpiryBlocks: o.EncryptedExpiryBlocks}
	if o.Encrypted {
		var khKeys []keys.PublicKey
		if st.ThresholdKey, khKeys, err = genesisDKG(context.Background(), d.Homes, d.Trust.ID); err != nil {
			return nil, err
		}
		if o.EpochBlocks > 0 {
			st.Epochs = &fractal.EpochRules{Blocks: o.EpochBlocks, Window: o.DKGWindow, Keyholders: khKeys}
			if err := st.Epochs.Check(n); err != nil {
				return nil, err
			}
		}
		if err := attachGenesisKey(d.Homes, st.ThresholdKey, st.ExpiryBlocks(), st.Epochs); err != nil {
			return nil, err
		}
		d.ThresholdKey = st.ThresholdKey
	}
	gen, err := devnetGenesis(st, vs, o.Instance)
	if err != nil {
		return nil, err
	}
	for i, c := range confs {
		var peers, rpcPeers []string
		for j := range confs {
			if j != i {
				rpcPeers = append(rpcPeers, d.RPC[j])
			}
			// One dialer a pair, the later validator (decision 185):
			// two that dial each other after a restart can each refuse
			// the other's connection as a duplicate, again and again.
			if j < i {
				peers = append(peers, d.P2P[j])
			}
		}
		c.P2P.PersistentPeers = strings.Join(peers, ",")
		if err := c.ValidateBasic(); err != nil {
			return nil, err
		}
		if err := gen.SaveAs(c.GenesisFile()); err != nil {
			return nil, err
		}
		cfg.WriteConfigFile(filepath.Join(c.RootDir, cometConfigFile), c)
		if err := writeSettings(c.RootDir, &Settings{Version: settingsVersion, RPCPeers: rpcPeers}); err != nil {
			return nil, err
		}
		if err := writeNodeConfig(c.RootDir, strings.TrimPrefix(d.API[i], "http://")); err != nil {
			return nil, err
		}
	}
	raw, err := json.MarshalIndent(d.Trust, "", "  ")
	if err != nil {
		return nil, err
	}
	return d, atomicfile.Write(filepath.Join(dir, TrustFile), append(raw, '\n'), 0o644)
}

// devnetAddr is validator i's loopback address and ports.
func devnetAddr(i, base int) (ip string, p2pPort, rpcPort int) {
	return fmt.Sprintf("127.0.0.%d", i+1), base + 2*i, base + 2*i + 1
}

// DevnetAPIPort is the port validator i's node serves the fractal.v1 API
// on (on 127.0.0.(i+1)): past every P2P and RPC port a devnet may use.
func DevnetAPIPort(i, base int) int { return base + 2*MaxDevnetValidators + i }

// FreeDevnetBase returns a base port from which every port a devnet of n
// validators would listen on (P2P, RPC, API) is free now, on its loopback
// address: a random one among 50 tries (tests pick their devnets with it).
func FreeDevnetBase(n int) (int, error) {
	for range 50 {
		if base := 20000 + 2*mrand.IntN(15000); devnetPortsFree(base, n) {
			return base, nil
		}
	}
	return 0, errors.New("validator: no free devnet ports on loopback")
}

func devnetPortsFree(base, n int) bool {
	for i := range n {
		ip, p2pPort, rpcPort := devnetAddr(i, base)
		for _, port := range []int{p2pPort, rpcPort, DevnetAPIPort(i, base)} {
			l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
			if err != nil {
				return false
			}
			l.Close()
		}
	}
	return true
}

// writeNodeConfig writes the home's node-config.json naming only the API's
// address: the node's other settings keep their defaults.
func writeNodeConfig(home, listen string) error {
	raw, err := json.MarshalIndent(map[string]string{"listen": listen}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(home, "node-config.json"), append(raw, '\n'), 0o644)
}

// devnetConfig is validator i's CometBFT configuration: loopback only,
// persistent peers (set by the caller; no peer exchange), duplicate IPs allowed
// (every outbound dial on loopback leaves from 127.0.0.1), no transaction
// indexer (the instance keeps receipts), ABCI responses kept (a restart
// that stopped between the instance's commit and CometBFT's replays from
// them), empty blocks made (each block's header certifies the state after
// the one before).
func devnetConfig(home string, i int, o DevnetOptions) *cfg.Config {
	c := cfg.DefaultConfig()
	c.SetRoot(home)
	ip, p2pPort, rpcPort := devnetAddr(i, o.BasePort)
	c.Moniker = fmt.Sprintf("v%d", i)
	c.DBBackend = "goleveldb"
	c.LogLevel = "error"
	c.P2P.ListenAddress = fmt.Sprintf("tcp://%s:%d", ip, p2pPort)
	c.P2P.ExternalAddress = ""
	c.P2P.AddrBookStrict = false
	c.P2P.PexReactor = false
	c.P2P.AllowDuplicateIP = true
	c.RPC.ListenAddress = fmt.Sprintf("tcp://%s:%d", ip, rpcPort)
	c.RPC.GRPCListenAddress = ""
	c.RPC.PprofListenAddress = ""
	c.Instrumentation.Prometheus = false
	c.Consensus.TimeoutPropose = orDefault(o.TimeoutPropose, 3*time.Second)
	c.Consensus.TimeoutCommit = orDefault(o.TimeoutCommit, time.Second)
	c.Consensus.CreateEmptyBlocks = true
	c.Mempool.Size = max(o.MempoolSize, 0)
	if c.Mempool.Size == 0 {
		c.Mempool.Size = 5000
	}
	c.Mempool.CacheSize = 2 * c.Mempool.Size
	c.Mempool.MaxTxBytes = o.Instance.MaxTxBytes
	c.Mempool.Recheck = true
	c.TxIndex.Indexer = "null"
	c.Storage.DiscardABCIResponses = false
	return c
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// devnetGenesis is the devnet's one genesis: the chain ID and validators of
// the instance, its trust entry (and threshold key) as app_state, a block
// gas limit of max_block_gas (CometBFT's mempool then reaps within it),
// vote extensions from height 1 when there is a threshold key.
func devnetGenesis(st *abci.AppState, vs *certify.ValidatorSet, ic fractal.Config) (*types.GenesisDoc, error) {
	appState, err := abci.EncodeAppState(st)
	if err != nil {
		return nil, err
	}
	params := types.DefaultConsensusParams()
	params.Block.MaxGas = int64(ic.MaxBlockGas)
	if st.ThresholdKey != nil { // shares ride in precommits from the first height (decision 136)
		params.ABCI.VoteExtensionsEnableHeight = 1
	}
	gen := &types.GenesisDoc{
		GenesisTime:     cmttime.Now(),
		ChainID:         certify.ChainID(st.Trust.ID),
		InitialHeight:   1,
		ConsensusParams: params,
		AppState:        appState,
	}
	for _, v := range vs.Validators() {
		pk := v.CometKey()
		gen.Validators = append(gen.Validators, types.GenesisValidator{Address: pk.Address(), PubKey: pk, Power: v.Power, Name: v.Name})
	}
	return gen, gen.ValidateAndComplete()
}

// copyDir copies the files and folders of src into dst (created).
func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		switch {
		case e.IsDir():
			err = copyDir(from, to)
		case e.Type().IsRegular():
			err = copyFile(from, to)
		default:
			err = errors.New(from + " is not a regular file")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	r, err := os.Open(from)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
