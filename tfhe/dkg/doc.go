// Package dkg makes a threshold key among n keyholders that never hold
// more than their own share: a Joint-Feldman distributed key generation
// (Pedersen's, as in kyber's share/dkg/pedersen) whose every message is a
// signed envelope and whose outcome follows from its transcript alone.
//
// Each keyholder runs a Party: a state machine holding its own polynomial,
// the messages it received and, at the end, its own share. Parties talk
// only through envelopes, each signed by its sender's Fractal key (XEdDSA)
// and bound to a Session (instance, epoch, attempt, keyholders, k), so a
// message of another run is refused and a copy changes nothing. There are
// four rounds: deals (Feldman commitments in clear and one share encrypted
// to each keyholder), responses (approval or complaint per deal, naming it
// by hash), justifications (the shares a dealer reveals to answer
// complaints; deals that responses show to differ are passed on as
// evidence), and confirmations (the hash of the transcript reached).
//
// The rules that turn the messages into a key (decide) are one function
// that the parties and an auditor (Check) run alike: a dealer that
// equivocates, sends malformed commitments (torsion included), draws k
// complaints, leaves a complaint unanswered or answers it wrongly is left
// out and named; the evidence is in the transcript. Keys come out of the
// DKG only when at least k holders confirmed one transcript.
//
// Run drives n parties in one process over an in-memory transport (tests,
// and the labelled development dealer); Drive runs one party against a
// Transport between processes (tfhe/dkg/direct). docs/decisions/130–133.
package dkg
