// Package fractal is the Fractal instance: a home folder holding a badger
// store of live notes, deployed Lua code, a persisted mempool, sealed and
// signed blocks with their receipts, and the executor key. It orders
// transactions, runs them through the four phases (package phases) and
// commits each block's effects atomically.
//
// Storage layout and block encoding: docs/formats/instance.md.
package fractal

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/certify"
	"github.com/fractalvm/fractal/fractal/chain"
	"github.com/fractalvm/fractal/fractal/guard"
	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/badgerdb"
	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/vp"
)

// Files inside an instance home folder.
const (
	configFile = "config.json"
	keyFile    = "executor.key"
	guardFile  = "guard.json" // the double-sign guard (package guard)
	dbDir      = "db"
	// tmpDir holds scratch stores (verify's replay) of the process that has
	// the instance open; every open empties it (decision 097).
	tmpDir = "tmp"
)

// configVersion is the version of config.json this code reads.
const configVersion = 1

// Config is the instance configuration, kept in config.json. config.json is
// written last at init, so its presence marks a complete instance.
type Config struct {
	Version     int    `json:"version"`
	Instance    string `json:"instance"`      // instance ID, hex (the store holds the authoritative copy)
	MaxBlockTxs int    `json:"max_block_txs"` // transactions per sealed block
	MaxTxBytes  int    `json:"max_tx_bytes"`  // largest transaction encoding or JSON accepted
	MaxQueue    int    `json:"max_queue"`     // queued submissions (plain and encrypted) the mempool holds
	MaxBlockGas uint64 `json:"max_block_gas"` // gas one block may spend; a transaction asking for more is refused
	Serial      bool   `json:"serial"`        // run blocks one transaction at a time instead of with the scheduler
	// MinGasPrice is the lowest gas price admission accepts; above 0, a
	// transaction must offer a fee (decision 140). Local policy: blocks
	// are not checked against it.
	MinGasPrice uint64 `json:"min_gas_price"`
	// PerKeyLimit makes Propose keep the Fae per-key limit (decision 142):
	// a block holds at most one more transaction signed by a key than the
	// earlier blocks holding one. Tests and benchmarks that send many
	// transactions from one key turn it off.
	PerKeyLimit bool `json:"per_key_limit"`
	// ValidatorSet marks a validator-set instance (decision 121): its
	// blocks come from a CometBFT network and are certified by its
	// validators' commits; the genesis descriptor in the store says so too.
	ValidatorSet bool `json:"validator_set,omitempty"`
}

// DefaultConfig returns the configuration written by Init: the per-key
// limit on, no minimum gas price.
func DefaultConfig() Config {
	return Config{Version: configVersion, MaxBlockTxs: 1024, MaxTxBytes: 1 << 20, MaxQueue: defaultMaxQueue, MaxBlockGas: defaultMaxBlockGas, PerKeyLimit: true}
}

// defaultMaxBlockGas is max_block_gas for a new instance and for a
// config.json written before the field existed: the largest gas limit a
// transaction may ask for, so that every valid transaction fits a block.
const defaultMaxBlockGas = phases.MaxGasLimit

// maxBlockGas bounds max_block_gas: about a day of execution.
const maxBlockGas = 1_000_000_000_000

// defaultMaxQueue is max_queue for a new instance and for a config.json
// written before the field existed.
const defaultMaxQueue = 1 << 16

func (c Config) check() error {
	if c.Version != configVersion {
		return fmt.Errorf("config version %d, this program reads %d", c.Version, configVersion)
	}
	if c.MaxBlockTxs < 1 || c.MaxBlockTxs > chain.MaxBlockTxs {
		return fmt.Errorf("max_block_txs %d outside 1..%d", c.MaxBlockTxs, chain.MaxBlockTxs)
	}
	if c.MaxTxBytes < 1024 || c.MaxTxBytes > 64<<20 {
		return fmt.Errorf("max_tx_bytes %d outside 1024..%d", c.MaxTxBytes, 64<<20)
	}
	if c.MaxQueue < 1 || c.MaxQueue > 1<<20 {
		return fmt.Errorf("max_queue %d outside 1..%d", c.MaxQueue, 1<<20)
	}
	if c.MaxBlockGas < 1 || c.MaxBlockGas > maxBlockGas {
		return fmt.Errorf("max_block_gas %d outside 1..%d", c.MaxBlockGas, uint64(maxBlockGas))
	}
	if c.MinGasPrice > phases.MaxGasPrice {
		return fmt.Errorf("min_gas_price %d outside 0..%d", c.MinGasPrice, uint64(phases.MaxGasPrice))
	}
	return nil
}

// checkRules refuses a configuration that rules cannot serve: a minimum
// gas price without a fee token to pay it in.
func (c Config) checkRules(r chain.Rules) error {
	if c.MinGasPrice > 0 && r.Fee == nil {
		return fmt.Errorf("min_gas_price %d, but the instance has no fee token to pay it in (fractal init --fee-token)", c.MinGasPrice)
	}
	return nil
}

// Instance is an open instance. Its methods are safe for concurrent use;
// submissions and seals are serialized.
type Instance struct {
	home string
	cfg  Config
	db   *badgerdb.DB
	// signer makes every signature of the executor: blocks (through the
	// guard, signAndStore), encrypted batch records and expiries.
	signer      keys.Signer    // nil for a validator set
	keyFromFile bool           // signer holds the key read from executor.key
	pub         keys.PublicKey // signer.Public(), or a validator set's hash
	id          [32]byte
	rules       chain.Rules // from the genesis descriptor
	code        *registry
	pool        *vp.Pool
	// shielded checks and commits shielded transactions (package shielded).
	shielded *shielded.Pool
	// guard records what the key signed; every block signature goes
	// through signAndStore, which checks and updates it. Nil for a
	// validator set, which signs nothing.
	guard *guard.Guard
	// validators is a validator-set instance's set (decision 121); nil for a
	// solo instance. Its hash stands where an executor key would (pub).
	validators *certify.ValidatorSet

	mu      sync.Mutex // serializes writers: Submit, Seal, Deploy
	nextSeq uint64     // queue sequence of the next submission; guarded by mu
	// queueBound is at least the number of queued submissions, exactly that
	// when the store's version is still queueExact (mempool.go); guarded by mu.
	queueBound int
	queueExact uint64
	// mem is the plain queue in memory while a node runs (memqueue.go);
	// nil when the queue is the store's. Set once, under mu.
	mem *memQueue
	// inflight is the pipelined seal whose write may still be in flight
	// (pipeline.go); guarded by mu.
	inflight *PendingSeal
	// maxTxGas is max_tx_gas, 0 for DefaultMaxTxGas (txgas.go).
	maxTxGas atomic.Uint64
}

// An Option changes how Init and Open set an instance up.
type Option func(*options)

type options struct {
	signer keys.Signer
	rules  chain.Rules
}

// WithRules makes Init create the instance with rules r (its fee token and
// block reward, decision 141), written into its genesis descriptor and so
// fixed for its life. Open ignores it: the rules come from the store.
func WithRules(r chain.Rules) Option { return func(o *options) { o.rules = r } }

// WithSigner makes s the executor's signer instead of the key file
// executor.key: Init writes no key file and names s's key in the genesis
// block; Open reads no key file and refuses a signer whose key is not the
// instance's executor key. Every signature the executor makes goes through
// it (decision 102).
func WithSigner(s keys.Signer) Option { return func(o *options) { o.signer = s } }

func optionsOf(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Init creates an instance in home: a new executor key (unless WithSigner
// gives one), the store, and the signed genesis block. It refuses a folder
// that already holds an instance (or part of one).
func Init(home string, cfg Config, opts ...Option) (in *Instance, err error) {
	cfg.ValidatorSet = false
	o := optionsOf(opts)
	if err := o.rules.Check(); err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	if err := cfg.checkRules(o.rules); err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	g := &chain.Genesis{Rules: o.rules}
	if _, err := rand.Read(g.Salt[:]); err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	return create(home, cfg, g, func() (keys.Signer, error) {
		if o.signer == nil {
			key, err := keys.GenerateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			if err := keys.WriteKeyFile(filepath.Join(home, keyFile), key); err != nil {
				return nil, err
			}
			o.signer = keys.NewKeySigner(key)
		}
		g.Executor = o.signer.Public()
		return o.signer, nil
	}, nil)
}

// InitValidatorSet creates a validator-set instance in home: its blocks
// are decided and certified by the validators of vs (a CometBFT network,
// package fractal/validator), never signed by a key of its own, and its
// genesis block is unsigned. The instance ID is the SHA-256 of a version-3
// genesis descriptor naming vs and salt, so every validator that creates
// its home from the same set and salt holds the same instance. It writes
// no key file and no guard (decision 121). Its chain has no rules: fees
// and rewards are for solo instances for now.
func InitValidatorSet(home string, cfg Config, vs *certify.ValidatorSet, salt [32]byte) (*Instance, error) {
	cfg.ValidatorSet = true
	g := &chain.Genesis{Executor: vs.Hash(), Salt: salt, ValidatorSet: true}
	return create(home, cfg, g, func() (keys.Signer, error) { return nil, nil }, vs)
}

// create makes the instance: it refuses a folder that holds one (or part of
// one), asks signer for the executor's signer (which completes g; none for
// a validator set, vs), writes the store with the genesis block, signed
// when there is a signer, and config.json last. On failure it leaves
// nothing behind.
func create(home string, cfg Config, g *chain.Genesis, signer func() (keys.Signer, error), vs *certify.ValidatorSet) (in *Instance, err error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	for _, name := range []string{configFile, keyFile, guardFile, dbDir} {
		if _, err := os.Lstat(filepath.Join(home, name)); err == nil {
			return nil, fmt.Errorf("fractal: init: %s already holds an instance (%s exists)", home, name)
		}
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	defer func() {
		if err != nil { // leave no partial instance behind
			os.RemoveAll(filepath.Join(home, dbDir))
			os.Remove(filepath.Join(home, keyFile))
			os.Remove(filepath.Join(home, guardFile))
		}
	}()
	sign, err := signer()
	if err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	desc := g.Encode()
	id := sha256.Sum256(desc)
	cfg.Instance = hex.EncodeToString(id[:])

	db, err := openDB(filepath.Join(home, dbDir))
	if err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	in = &Instance{home: home, cfg: cfg, db: db, signer: sign, pub: g.Executor, id: id, rules: g.Rules, pool: vp.NewPool(), validators: vs}
	in.code = newRegistry(db.DB)
	in.shielded = shielded.New(filepath.Join(home, "zk"), shielded.DefaultWindow)
	genesis := &chain.Block{Instance: id, TxsHash: chain.TxsHash(nil), StateRoot: statetree.EmptyRoot, Executor: in.pub}
	meta := [][2][]byte{
		{metaGenesis, desc},
		{metaInstance, id[:]},
		{metaHead, u64(0)},
		{metaRoot, genesis.StateRoot[:]},
	}
	if vs != nil {
		meta = append(meta, [2][]byte{metaValidators, vs.Encode()})
	}
	txn := db.NewTransaction(true)
	defer txn.Discard()
	for _, kv := range meta {
		if err = txn.Set(kv[0], kv[1]); err != nil {
			break
		}
	}
	store := func() error {
		if err := txn.Set(seqKey(prefixBlock, 0), genesis.Encode()); err != nil {
			return err
		}
		return txn.Commit()
	}
	if err == nil && sign != nil {
		in.guard = guard.New(filepath.Join(home, guardFile), id)
		err = in.Sign(context.Background(), genesis, store)
	} else if err == nil {
		err = store()
	}
	if err == nil {
		err = writeConfig(home, cfg)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	return in, nil
}

// Open opens the instance in home. It refuses a folder that is not a
// complete instance, and one that another process has open.
func Open(home string, opts ...Option) (*Instance, error) {
	o := optionsOf(opts)
	raw, err := inputfile.Read(filepath.Join(home, configFile), 64<<10) // a config is a few hundred bytes
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fractal: open %s: not a fractal instance (no %s; run fractal init)", home, configFile)
	}
	if err != nil {
		return nil, fmt.Errorf("fractal: open %s: %w", home, err)
	}
	cfg, err := decodeConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("fractal: open %s: %s: %w", home, configFile, err)
	}
	fromFile := o.signer == nil && !cfg.ValidatorSet
	if cfg.ValidatorSet && o.signer != nil {
		return nil, fmt.Errorf("fractal: open %s: a validator-set instance has no executor to sign with", home)
	}
	if fromFile {
		key, err := keys.LoadKeyFile(filepath.Join(home, keyFile))
		if err != nil {
			return nil, fmt.Errorf("fractal: open %s: executor key: %w", home, err)
		}
		o.signer = keys.NewKeySigner(key)
	}
	dbPath := filepath.Join(home, dbDir)
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("fractal: open %s: not a fractal instance (no %s folder)", home, dbDir)
	}
	db, err := openDB(dbPath)
	if err != nil {
		return nil, fmt.Errorf("fractal: open %s: %w", home, err)
	}
	in := &Instance{home: home, cfg: cfg, db: db, signer: o.signer, keyFromFile: fromFile, pool: vp.NewPool()}
	if o.signer != nil {
		in.pub = o.signer.Public()
	}
	in.code = newRegistry(db.DB)
	in.shielded = shielded.New(filepath.Join(home, "zk"), shielded.DefaultWindow)
	if err := in.opened(); err != nil {
		db.Close()
		return nil, fmt.Errorf("fractal: open %s: %w", home, err)
	}
	return in, nil
}

// opened finishes Open once the store is open (and so locked): it empties
// the scratch folder a killed process may have left, reads the identity and
// checks the store against the guard, creating the guard from the store's
// head for an instance that has none (decision 095).
func (in *Instance) opened() error {
	if err := os.RemoveAll(filepath.Join(in.home, tmpDir)); err != nil {
		return err
	}
	// Before the queue's sequence is read: the log's entries are queue
	// entries once folded.
	if err := in.foldLog(); err != nil {
		return err
	}
	if err := in.loadIdentity(); err != nil {
		return err
	}
	if in.validators != nil {
		return nil // it signs nothing, so it keeps no guard (decision 121)
	}
	path := filepath.Join(in.home, guardFile)
	g, err := guard.Load(path, in.id)
	if errors.Is(err, os.ErrNotExist) {
		var head guard.Block
		if err := in.db.View(func(txn *badger.Txn) (err error) {
			head, _, err = txnChain{in, txn}.Last(guard.Blocks)
			return err
		}); err != nil {
			return err
		}
		g, err = guard.Create(path, in.id, head)
	}
	if err != nil {
		return err
	}
	in.guard = g
	return in.db.View(func(txn *badger.Txn) error { return g.Check(txnChain{in, txn}) })
}

// loadIdentity reads the instance ID and checks it against config.json and
// the executor key.
func (in *Instance) loadIdentity() error {
	return in.db.View(func(txn *badger.Txn) error {
		id, err := getValue(txn, metaInstance)
		if err != nil {
			return fmt.Errorf("store has no instance ID: %w", err)
		}
		if len(id) != 32 {
			return fmt.Errorf("store instance ID has %d bytes", len(id))
		}
		copy(in.id[:], id)
		desc, err := getValue(txn, metaGenesis)
		if err != nil {
			return fmt.Errorf("store has no genesis descriptor: %w", err)
		}
		gen, err := chain.DecodeGenesis(desc)
		if err != nil {
			return err
		}
		if gen.ID() != in.id {
			return fmt.Errorf("the store's genesis descriptor does not hash to its instance ID")
		}
		in.rules = gen.Rules
		if err := in.cfg.checkRules(in.rules); err != nil {
			return fmt.Errorf("%s: %w", configFile, err)
		}
		if in.nextSeq, err = lastSeq(txn); err != nil {
			return err
		}
		// The encrypted queue shares the arrival sequence (encrypted.go).
		if in.nextSeq, err = afterEncryptedQueue(txn, in.nextSeq); err != nil {
			return err
		}
		in.queueBound = in.countQueued(txn)
		in.queueExact = in.db.MaxVersion()
		if hex.EncodeToString(id) != in.cfg.Instance {
			return fmt.Errorf("%s names instance %s but the store holds %x", configFile, in.cfg.Instance, id)
		}
		if gen.ValidatorSet != in.cfg.ValidatorSet {
			return fmt.Errorf("%s says validator_set %v but the genesis descriptor says %v", configFile, in.cfg.ValidatorSet, gen.ValidatorSet)
		}
		if gen.ValidatorSet {
			return in.loadValidators(txn, gen)
		}
		g, err := in.blockAt(txn, 0)
		if err != nil {
			return err
		}
		if g.Executor != in.pub {
			if in.keyFromFile {
				return fmt.Errorf("%s is not the executor key of this instance", keyFile)
			}
			return fmt.Errorf("the signer's key %s is not the executor key of this instance", in.pub)
		}
		return nil
	})
}

// Close folds the memory queue's log into the store (KeepQueueInMemory)
// and closes the store.
func (in *Instance) Close() error {
	if err := in.closeMem(); err != nil {
		in.db.Close()
		return fmt.Errorf("fractal: close: %w", err)
	}
	if err := in.db.Close(); err != nil {
		return fmt.Errorf("fractal: close: %w", err)
	}
	return nil
}

// ID returns the instance ID.
func (in *Instance) ID() [32]byte { return in.id }

// Executor returns the executor public key; for a validator-set instance,
// the hash of its validator set, which its blocks name in that place.
func (in *Instance) Executor() keys.PublicKey { return in.pub }

// Validators returns a validator-set instance's validator set, nil for a
// solo instance.
func (in *Instance) Validators() *certify.ValidatorSet { return in.validators }

// Config returns the configuration.
func (in *Instance) Config() Config { return in.cfg }

// Rules returns the chain rules the instance was made with.
func (in *Instance) Rules() chain.Rules { return in.rules }

// ErrInUse reports a store that another process has open.
var ErrInUse = badgerdb.ErrInUse

// openDB opens the instance's store (package badgerdb: checked before
// badger reads it, every block and value verified when read).
func openDB(dir string) (*badgerdb.DB, error) {
	db, err := badgerdb.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil))
	var damaged *badgerdb.Damaged
	if errors.As(err, &damaged) {
		return nil, fmt.Errorf("%w; restore a backup (docs/cli/backup.md)", err)
	}
	return db, err
}

// writeConfig writes config.json atomically, so that it is either absent or
// complete.
func writeConfig(home string, cfg Config) error {
	data, err := encodeConfig(cfg)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(home, configFile), data, 0o600)
}

// encodeConfig is config.json's contents.
func encodeConfig(cfg Config) ([]byte, error) {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// decodeConfig parses and checks config.json's contents.
func decodeConfig(raw []byte) (Config, error) {
	// A config.json older than max_queue or max_block_gas gets the default.
	cfg := Config{MaxQueue: defaultMaxQueue, MaxBlockGas: defaultMaxBlockGas}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return cfg, err
	}
	return cfg, cfg.check()
}

func getValue(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
