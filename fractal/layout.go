package fractal

import "encoding/binary"

// Storage key layout. Every key in the badger store starts with a one-byte
// prefix naming what it holds; docs/formats/instance.md is the reference.
const (
	prefixMeta    = 'm' // m + name: instance metadata
	prefixNote    = 'n' // n + state key text: the live note at that key
	prefixCode    = 'c' // c + 32-byte hash: Lua source
	prefixTx      = 't' // t + 32-byte ID: committed transaction (the replay index)
	prefixReceipt = 'r' // r + 32-byte ID: receipt of a committed transaction
	prefixBlock   = 'b' // b + u64 height: block
	prefixQueue   = 'q' // q + u64 sequence: queued transaction, in arrival order
	prefixPending = 'p' // p + 32-byte ID: u64 sequence of a queued transaction
	prefixTree    = 's' // s + ...: state tree nodes (fractal/statetree)
	// E + ...: the encrypted mempool (prefixEncrypted in encrypted.go)
)

// Metadata names under prefixMeta.
var (
	metaInstance = metaKey("instance") // 32-byte instance ID
	metaHead     = metaKey("head")     // u64 height of the last block
	metaRoot     = metaKey("root")     // 32-byte state root after the last block
	metaExported = metaKey("exported") // u64 height + 32-byte hash: the highest block exported in a manifest file
)

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

func noteKey(stateKey string) []byte { return append([]byte{prefixNote}, stateKey...) }

func hashKey(prefix byte, h [32]byte) []byte { return append([]byte{prefix}, h[:]...) }

func seqKey(prefix byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix}, n)
}
