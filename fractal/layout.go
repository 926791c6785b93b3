package fractal

import (
	"encoding/binary"

	"github.com/fractalvm/fractal/notes"
	"github.com/fractalvm/fractal/shielded"
)

// Storage key layout: every key in the badger store starts with a prefix
// naming the part of the instance that owns it. This file is the one place
// that lists them (storagePrefixes, checked by a test: no prefix is a
// prefix of another); docs/formats/instance.md is the reference.
const (
	// The instance itself.
	prefixMeta    = 'm' // m + name: instance metadata (meta* below)
	prefixNote    = 'n' // n + state key text: the live note at that key
	prefixCode    = 'c' // c + 32-byte hash: Lua source
	prefixTx      = 't' // t + 32-byte ID: u64 height + committed transaction (the replay index)
	prefixReceipt = 'r' // r + 32-byte ID: receipt of a committed transaction
	prefixBlock   = 'b' // b + u64 height: block
	prefixTree    = 's' // s + node hash: state tree nodes (fractal/statetree)

	// The queue of plaintext transactions (mempool.go, fees.go).
	prefixQueue   = 'q' // q + u64 sequence: queued transaction, in arrival order
	prefixPending = 'p' // p + 32-byte ID: u64 sequence of a queued transaction
	prefixFeeNote = 'f' // f + state key text: ID of the queued transaction offering that fee note
	// u + u64 mempool log generation + u64 sequence: a logged transaction a
	// committed block took and refused (memqueue.go)
	prefixLogTaken = 'u'

	// The per-key limit (perkey.go).
	prefixPerKey = 'k' // k + 32-byte public key: u64 count of blocks holding a transaction it signed

	// Labelled outputs (labels.go, chain/labels.go).
	prefixLabels = 'l' // l + 32-byte tx ID: the label record of a committed transaction that labelled outputs

	// Other copies' manifests (manifest.go, docs/formats/chain.md).
	prefixImported = 'i' // i + u64 height + 32-byte hash: a manifest imported from another copy
	prefixEvidence = 'e' // e + 32-byte pair hash: fork evidence

	// Cross-instance transfer (export.go, docs/formats/cross-instance.md).
	prefixOutbox   = 'o' // o + destination[32] + outbox key[32]: txid, u32 index, note of an export
	prefixImportIx = 'x' // x + export ID[32]: ID of the note the import created

	// A validator-set instance's records of its consensus (decided.go,
	// docs/formats/validator-set.md): v, then a second byte.
	prefixDecided = 'v'

	// The encrypted mempool (encrypted*.go, docs/formats/encrypted-mempool.md):
	// E, then a second byte saying what the key holds.
	prefixEncrypted = 'E'
	// The shielded pool owns shielded.Prefix ('Z') and the keys under it
	// (shielded.StorageKeys).
)

// Second bytes under prefixEncrypted.
const (
	encKey     = 'k' // E k: the attached threshold public key
	encQueue   = 'q' // E q u64 seq: a queued payload, in arrival order (shared sequence with q)
	encIndex   = 'p' // E p payload ID: u64 seq, while the payload is queued or in a pending batch
	encBatch   = 'b' // E b u64 n: encrypted batch record n
	encSlot    = 's' // E s u64 n u32 slot: the payload in slot of batch n
	encShares  = 'h' // E h u64 n u32 keyholder: that keyholder's verified share batch for batch n
	encWaiting = 'w' // E w: u64 number of the batch waiting for shares (absent when none)
	encOpened  = 'o' // E o u64 n: how batch n closed (batchClose: opened or expired)
	encArchive = 'a' // E a key ID: every threshold key ever attached
	encOutcome = 'r' // E r payload ID: what became of the payload (EncryptedOutcome)
	// A validator set's only (encrypted_validators.go):
	encFixedAt    = 'f' // E f u64 n: u64 consensus height whose block fixed batch n
	encLastShares = 'l' // E l u64 n: the last shares transaction for waiting batch n (lastShares)
)

// Second bytes under prefixDecided.
const (
	decidedBlock       = 'h' // v h u64 block height: u64 height of the consensus block that made it
	decidedMisbehavior = 'm' // v m u64 consensus height u32 index: a misbehaviour the engine reported with that block
	decidedEpochRules  = 'r' // v r: the epoch rules (EpochRules encoding), absent without epochs
	decidedEpoch       = 'e' // v e: u64 epoch in force ‖ u32 attempt of the next epoch's DKG
	decidedDKG         = 'd' // v d session[32] u8 kind u32 sender hash[32]: a DKG envelope the chain recorded
	decidedEpochRecord = 'k' // v k u64 epoch u32 attempt: that DKG attempt's record (EpochRecord)
)

// Metadata names under prefixMeta.
var (
	metaInstance  = metaKey("instance")    // 32-byte instance ID
	metaGenesis   = metaKey("genesis")     // the genesis descriptor the instance ID hashes
	metaHead      = metaKey("head")        // u64 height of the last block
	metaRoot      = metaKey("root")        // 32-byte state root after the last block
	metaExported  = metaKey("exported")    // u64 height + 32-byte hash: the highest block exported in a manifest file
	metaLogFolded = metaKey("mempool log") // u64 generation of the last mempool log folded into the queue (memqueue.go)
	// A validator-set instance only (decided.go):
	metaValidators = metaKey("validators")       // the validator set (certify.ValidatorSet encoding)
	metaDecided    = metaKey("decided")          // u64 height of the last consensus block committed
	metaEncExpiry  = metaKey("encrypted expiry") // u64 consensus heights a batch may wait (decision 164)
	metaSide       = metaKey("side")             // 32-byte side digest after it (sidedigest.go), absent while zero
)

// storagePrefixes lists every key prefix of the store with its owner: the
// instance's own and those of its components. Each entry is a full prefix
// (a one-byte prefix, or a component's prefix and the byte or name under
// it); no entry is a prefix of another, so no two owners can write the same
// key.
var storagePrefixes = func() []storagePrefix {
	out := []storagePrefix{
		{metaInstance, "instance"}, {metaGenesis, "instance"}, {metaHead, "instance"},
		{metaRoot, "instance"}, {metaExported, "instance"}, {metaLogFolded, "queue"},
		{metaValidators, "validator set"}, {metaDecided, "validator set"}, {metaEncExpiry, "validator set"},
		{metaSide, "validator set"},
		{decidedKey(decidedBlock), "validator set"}, {decidedKey(decidedMisbehavior), "validator set"},
		{decidedKey(decidedEpochRules), "epochs"}, {decidedKey(decidedEpoch), "epochs"},
		{decidedKey(decidedDKG), "epochs"}, {decidedKey(decidedEpochRecord), "epochs"},
		{[]byte{prefixNote}, "instance"}, {[]byte{prefixCode}, "instance"},
		{[]byte{prefixTx}, "instance"}, {[]byte{prefixReceipt}, "instance"},
		{[]byte{prefixBlock}, "instance"}, {[]byte{prefixTree}, "state tree"},
		{[]byte{prefixQueue}, "queue"}, {[]byte{prefixPending}, "queue"}, {[]byte{prefixFeeNote}, "queue"},
		{[]byte{prefixLogTaken}, "queue"},
		{[]byte{prefixPerKey}, "per-key limit"}, {[]byte{prefixLabels}, "labels"},
		{[]byte{prefixImported}, "manifests"}, {[]byte{prefixEvidence}, "manifests"},
		{[]byte{prefixOutbox}, "transfers"}, {[]byte{prefixImportIx}, "transfers"},
	}
	for _, sub := range []byte{encKey, encQueue, encIndex, encBatch, encSlot, encShares, encWaiting, encOpened, encArchive, encOutcome, encFixedAt, encLastShares} {
		out = append(out, storagePrefix{encKeyOf(sub), "encrypted mempool"})
	}
	for _, k := range shielded.StorageKeys() {
		out = append(out, storagePrefix{k, "shielded pool"})
	}
	return out
}()

type storagePrefix struct {
	prefix []byte
	owner  string
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

func noteKey(stateKey string) []byte { return append([]byte{prefixNote}, stateKey...) }

// noteKeyOf is noteKey(k.String()) in one allocation, without the string.
func noteKeyOf(k *notes.StateKey) []byte {
	return k.AppendText(append(make([]byte, 0, 1+k.TextCap()), prefixNote))
}

func hashKey(prefix byte, h [32]byte) []byte { return append([]byte{prefix}, h[:]...) }

func seqKey(prefix byte, n uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefix}, n)
}

func decidedKey(sub byte, parts ...[]byte) []byte { return subKey(prefixDecided, sub, parts) }

func encKeyOf(sub byte, parts ...[]byte) []byte { return subKey(prefixEncrypted, sub, parts) }

// subKey is a key under a prefix with second bytes: prefix, sub, parts.
func subKey(prefix, sub byte, parts [][]byte) []byte {
	k := []byte{prefix, sub}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}
