// Package fractal is the Fractal instance: a home folder holding a badger
// store of live notes, deployed Lua code, a persisted mempool, sealed and
// signed blocks with their receipts, and the executor key. It orders
// transactions, runs them through the four phases (package phases) and
// commits each block's effects atomically.
//
// Storage layout and block encoding: docs/formats/instance.md.
package fractal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/fractalvm/fractal/fractal/statetree"
	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/enc"
	"github.com/fractalvm/fractal/keys"
	"github.com/fractalvm/fractal/phases"
	"github.com/fractalvm/fractal/shielded"
	"github.com/fractalvm/fractal/vp"
)

// Files inside an instance home folder.
const (
	configFile = "config.json"
	keyFile    = "executor.key"
	dbDir      = "db"
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
}

// DefaultConfig returns the configuration written by Init.
func DefaultConfig() Config {
	return Config{Version: configVersion, MaxBlockTxs: 1024, MaxTxBytes: 1 << 20, MaxQueue: defaultMaxQueue, MaxBlockGas: defaultMaxBlockGas}
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
	if c.MaxBlockTxs < 1 || c.MaxBlockTxs > MaxBlockTxs {
		return fmt.Errorf("max_block_txs %d outside 1..%d", c.MaxBlockTxs, MaxBlockTxs)
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
	return nil
}

// Instance is an open instance. Its methods are safe for concurrent use;
// submissions and seals are serialized.
type Instance struct {
	home string
	cfg  Config
	db   *badger.DB
	key  keys.PrivateKey
	pub  keys.PublicKey
	id   [32]byte
	code *registry
	pool *vp.Pool
	// shielded checks and commits shielded transactions (package shielded).
	shielded *shielded.Pool

	mu      sync.Mutex // serializes writers: Submit, Seal, Deploy
	nextSeq uint64     // queue sequence of the next submission; guarded by mu
	// queueBound is at least the number of queued submissions, exactly that
	// when the store's version is still queueExact (mempool.go); guarded by mu.
	queueBound int
	queueExact uint64
}

// genesisDescriptor is the encoding the instance ID is the SHA-256 of:
// version, executor public key, and 32 random bytes so that two instances
// with one executor key still differ.
func genesisDescriptor(pub keys.PublicKey, salt [32]byte) []byte {
	w := enc.NewWriter(65)
	w.U8(1)
	w.Fixed(pub[:])
	w.Fixed(salt[:])
	return w.Bytes()
}

// Init creates an instance in home: a new executor key, the store, and the
// signed genesis block. It refuses a folder that already holds an instance
// (or part of one).
func Init(home string, cfg Config) (in *Instance, err error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	for _, name := range []string{configFile, keyFile, dbDir} {
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
		}
	}()
	key, err := keys.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	if err := keys.WriteKeyFile(filepath.Join(home, keyFile), key); err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	var salt [32]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	pub := key.Public()
	desc := genesisDescriptor(pub, salt)
	id := sha256.Sum256(desc)
	cfg.Instance = hex.EncodeToString(id[:])

	db, err := openDB(filepath.Join(home, dbDir))
	if err != nil {
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	in = &Instance{home: home, cfg: cfg, db: db, key: key, pub: pub, id: id, pool: vp.NewPool()}
	in.code = newRegistry(db)
	in.shielded = shielded.New(filepath.Join(home, "zk"), shielded.DefaultWindow)
	genesis := &Block{Instance: id, TxsHash: TxsHash(nil), StateRoot: statetree.EmptyRoot, Executor: pub}
	if err := in.sign(genesis); err != nil {
		db.Close()
		return nil, fmt.Errorf("fractal: init: %w", err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		for _, kv := range [][2][]byte{
			{metaKey("genesis"), desc},
			{metaInstance, id[:]},
			{metaHead, u64(0)},
			{metaRoot, genesis.StateRoot[:]},
			{seqKey(prefixBlock, 0), genesis.Encode()},
		} {
			if err := txn.Set(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
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
func Open(home string) (*Instance, error) {
	raw, err := os.ReadFile(filepath.Join(home, configFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fractal: open %s: not a fractal instance (no %s; run fractal init)", home, configFile)
	}
	if err != nil {
		return nil, fmt.Errorf("fractal: open %s: %w", home, err)
	}
	// A config.json older than max_queue or max_block_gas gets the default.
	cfg := Config{MaxQueue: defaultMaxQueue, MaxBlockGas: defaultMaxBlockGas}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("fractal: open %s: %s: %w", home, configFile, err)
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("fractal: open %s: %s: %w", home, configFile, err)
	}
	key, err := keys.LoadKeyFile(filepath.Join(home, keyFile))
	if err != nil {
		return nil, fmt.Errorf("fractal: open %s: executor key: %w", home, err)
	}
	dbPath := filepath.Join(home, dbDir)
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("fractal: open %s: not a fractal instance (no %s folder)", home, dbDir)
	}
	db, err := openDB(dbPath)
	if err != nil {
		return nil, fmt.Errorf("fractal: open %s: %w", home, err)
	}
	in := &Instance{home: home, cfg: cfg, db: db, key: key, pub: key.Public(), pool: vp.NewPool()}
	in.code = newRegistry(db)
	in.shielded = shielded.New(filepath.Join(home, "zk"), shielded.DefaultWindow)
	if err := in.loadIdentity(); err != nil {
		db.Close()
		return nil, fmt.Errorf("fractal: open %s: %w", home, err)
	}
	return in, nil
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
		if in.nextSeq, err = lastSeq(txn); err != nil {
			return err
		}
		// The encrypted queue shares the arrival sequence (encrypted.go).
		if in.nextSeq, err = afterEncryptedQueue(txn, in.nextSeq); err != nil {
			return err
		}
		in.queueBound = countQueued(txn)
		in.queueExact = in.db.MaxVersion()
		if hex.EncodeToString(id) != in.cfg.Instance {
			return fmt.Errorf("%s names instance %s but the store holds %x", configFile, in.cfg.Instance, id)
		}
		g, err := in.blockAt(txn, 0)
		if err != nil {
			return err
		}
		if g.Executor != in.pub {
			return fmt.Errorf("%s is not the executor key of this instance", keyFile)
		}
		return nil
	})
}

// Close closes the store.
func (in *Instance) Close() error {
	if err := in.db.Close(); err != nil {
		return fmt.Errorf("fractal: close: %w", err)
	}
	return nil
}

// ID returns the instance ID.
func (in *Instance) ID() [32]byte { return in.id }

// Executor returns the executor public key.
func (in *Instance) Executor() keys.PublicKey { return in.pub }

// Config returns the configuration.
func (in *Instance) Config() Config { return in.cfg }

func openDB(dir string) (*badger.DB, error) {
	opts := badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil)
	db, err := badger.Open(opts)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, errors.New("store is in use by another process")
		}
		return nil, fmt.Errorf("store: %w", err)
	}
	return db, nil
}

// writeConfig writes config.json atomically, so that it is either absent or
// complete.
func writeConfig(home string, cfg Config) error {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(home, configFile), append(data, '\n'), 0o600)
}

// sign fills b.Executor and b.Signature.
func (in *Instance) sign(b *Block) error {
	b.Executor = in.pub
	sig, err := in.key.Sign(rand.Reader, b.signedMessage())
	if err != nil {
		return fmt.Errorf("sign block: %w", err)
	}
	copy(b.Signature[:], sig)
	return nil
}

// VerifyBlock checks b's executor signature.
func VerifyBlock(b *Block) error {
	if err := keys.Verify(keys.PublicKey(b.Executor), b.signedMessage(), b.Signature[:]); err != nil {
		return fmt.Errorf("fractal: block %d: executor signature: %w", b.Height, err)
	}
	return nil
}

func getValue(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
