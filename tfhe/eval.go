package tfhe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"filippo.io/edwards25519"

	"github.com/fractalvm/fractal/tfhe/internal/group"
)

// ErrUnsupportedCircuit is returned by Eval for every circuit other than the
// linear ones on counters, as the seed allows ("Eval fails for all circuits"
// in Ferveo; a restricted class here).
var ErrUnsupportedCircuit = errors.New("unsupported circuit")

// Circuit names a linear function of counters.
type Circuit struct {
	// Op is "sum" (any number of inputs), "add" (two inputs) or "mul"
	// (one input times Factor).
	Op     string
	Factor uint64
}

func (c Circuit) String() string {
	if c.Op == "mul" {
		return "mul:" + strconv.FormatUint(c.Factor, 10)
	}
	return c.Op
}

// ParseCircuit reads "sum", "add" or "mul:N".
func ParseCircuit(s string) (Circuit, error) {
	switch {
	case s == "sum" || s == "add":
		return Circuit{Op: s}, nil
	case strings.HasPrefix(s, "mul:"):
		f, err := strconv.ParseUint(strings.TrimPrefix(s, "mul:"), 10, 64)
		if err != nil {
			return Circuit{}, fmt.Errorf("tfhe: circuit %q: factor: %w", s, err)
		}
		return Circuit{Op: "mul", Factor: f}, nil
	}
	return Circuit{}, fmt.Errorf("tfhe: %w %q (supported: sum, add, mul:N on counters)", ErrUnsupportedCircuit, s)
}

// Eval applies a circuit to ciphertexts (the seed's TFHE.Eval, with any
// number of inputs). Only counters, and only sum, add and mul:N, are
// supported; the result may exceed 2^32, in which case it will not decrypt.
func Eval(pk *PublicKey, c Circuit, in ...Ciphertext) (*Counter, error) {
	cs := make([]*Counter, len(in))
	for i, ct := range in {
		ctr, ok := ct.(*Counter)
		if !ok {
			return nil, fmt.Errorf("tfhe: eval: %w: input %d is a payload, and payloads support no circuit", ErrUnsupportedCircuit, i)
		}
		if ctr.key != pk.ID() {
			return nil, fmt.Errorf("tfhe: eval: input %d %w", i, errWrongKey)
		}
		cs[i] = ctr
	}
	arity := func(want int) error {
		if len(cs) != want {
			return fmt.Errorf("tfhe: eval: %s takes %d inputs, got %d", c, want, len(cs))
		}
		return nil
	}
	switch c.Op {
	case "sum":
		if len(cs) == 0 {
			return nil, errors.New("tfhe: eval: sum of no inputs")
		}
	case "add":
		if err := arity(2); err != nil {
			return nil, err
		}
	case "mul":
		if err := arity(1); err != nil {
			return nil, err
		}
		f := group.ScalarFromUint64(c.Factor)
		return &Counter{key: pk.ID(),
			u: new(edwards25519.Point).ScalarMult(f, cs[0].u),
			v: new(edwards25519.Point).ScalarMult(f, cs[0].v)}, nil
	default:
		return nil, fmt.Errorf("tfhe: eval: %w %q", ErrUnsupportedCircuit, c.Op)
	}
	out := &Counter{key: pk.ID(), u: edwards25519.NewIdentityPoint(), v: edwards25519.NewIdentityPoint()}
	for _, x := range cs {
		out.u.Add(out.u, x.u)
		out.v.Add(out.v, x.v)
	}
	return out, nil
}
