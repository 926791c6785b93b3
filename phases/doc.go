// Package phases runs Fractal transactions: their canonical encoding, ID,
// signatures and JSON form (Tx), phases 1–3 of the four-phase pipeline
// (Execute), the receipt (Receipt), and the scheduler that runs the
// non-conflicting transactions of a block in parallel with the result of
// serial execution (ExecuteBlock, ExecuteSerial).
//
// Phase 4, commit, belongs to the instance: for an accepted Outcome it
// deletes Outcome.Spent, writes Outcome.Created and stores the receipt in one
// atomic storage transaction; a refused one changes nothing and is not
// stored (its receipt goes back to the submitter only; see
// docs/decisions/080-refused-transactions-leave-no-trace.md). The instance
// supplies the live notes (State) and the code registry (Code).
//
// What Lua code sees (docs/formats/transactions.md has the details):
//
//   - lookup code: get(statekey) → note or nil, scan(pattern) → notes in
//     state-key order (both limited to the read constraints; a read outside
//     them aborts the transaction), extradata, signers, txid; returns a list
//     of state keys or notes, the inputs. get and scan cost 10 gas a call (and
//     a scan 10 per read-constraint intersection beyond the first), 8 a note
//     returned, 1 per started 32 bytes of it; a scan asks the store
//     only for the pattern's intersections with the read constraints.
//   - calculation code: inputs, extradata, signers, txid; returns a list of
//     notes, the outputs, which must have empty provenance.
//   - validity predicates: inputs, outputs, extradata, signers, txid, role
//     ("application", "input" or "output"), index (1-based position of the
//     note in inputs or outputs; 0 for an application), note (the note asked
//     about; nil for an application), application (hex hash of the
//     application asked about). Each must return exactly true. The tables
//     a predicate is given are read-only, shared by all the predicates of
//     the transaction (note is the same table as its place in inputs or
//     outputs): changing one is an error (docs/decisions/042-throughput.md).
//     Code may also call the host functions the instance registers for its
//     stage (Code.Hosts, hostlib.go; an instance gives predicates
//     smartlua_check), whose work is charged to the calling run's gas
//     (docs/decisions/044-predicate-host-functions.md,
//     104-host-function-registry.md).
//
// Notes are tables {provenance={hex…}, application=hex, owner=hex, key=bytes,
// value=bytes}; signers are standard-base64 public keys; txid is lower-case
// hex.
package phases
