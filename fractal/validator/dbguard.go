package validator

// CometBFT's stores, opened through a provider that works around two of
// its shutdown traps (CometBFT v0.38.26; docs/decisions/120): after
// Node.Stop, consensus.(*Reactor).queryMaj23Routine may still read the
// block store 2 s later and panic on "leveldb: closed", killing the whole
// process; and Node.OnStop leaves tx_index.db open, whose goleveldb LOCK
// then refuses a restart of the same home in the same process. Reads of a
// closed store answer "not found" here, and the provider closes whatever
// it opened.

import (
	"sync"
	"sync/atomic"

	dbm "github.com/cometbft/cometbft-db"
	cfg "github.com/cometbft/cometbft/config"
)

type closeSafeDB struct {
	dbm.DB
	closed atomic.Bool
}

func (d *closeSafeDB) Get(k []byte) ([]byte, error) {
	v, err := d.DB.Get(k)
	if err != nil && d.closed.Load() {
		return nil, nil
	}
	return v, err
}

func (d *closeSafeDB) Has(k []byte) (bool, error) {
	ok, err := d.DB.Has(k)
	if err != nil && d.closed.Load() {
		return false, nil
	}
	return ok, err
}

// Close is idempotent: Node.OnStop closes some, closeAll the rest.
func (d *closeSafeDB) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	return d.DB.Close()
}

// dbSet is a cfg.DBProvider (cfg.DefaultDBProvider plus the guard) that
// remembers what it opened.
type dbSet struct {
	mu  sync.Mutex
	dbs []*closeSafeDB
}

func (s *dbSet) provide(ctx *cfg.DBContext) (dbm.DB, error) {
	db, err := cfg.DefaultDBProvider(ctx)
	if err != nil {
		return nil, err
	}
	g := &closeSafeDB{DB: db}
	s.mu.Lock()
	s.dbs = append(s.dbs, g)
	s.mu.Unlock()
	return g, nil
}

func (s *dbSet) closeAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, d := range s.dbs {
		if err := d.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.dbs = nil
	return first
}
