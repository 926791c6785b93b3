// Package deps pins the project's third-party modules in go.mod while the
// packages that use them are written. Remove it once every module is imported
// by real code.
package deps

import (
	_ "filippo.io/edwards25519"
	_ "github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	_ "github.com/consensys/gnark/backend/groth16"
	_ "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	_ "github.com/consensys/gnark/frontend/cs/r1cs"
	_ "github.com/consensys/gnark/std/hash/poseidon2"
	_ "github.com/consensys/gnark/std/rangecheck"
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/spf13/cobra"
	_ "github.com/yuin/gopher-lua"
	_ "github.com/yuin/gopher-lua/parse"
	_ "go.dedis.ch/kyber/v3/group/edwards25519"
	_ "go.dedis.ch/kyber/v3/proof/dleq"
	_ "go.dedis.ch/kyber/v3/share/dkg/pedersen"
)
