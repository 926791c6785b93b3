package chain

import (
	"fmt"

	"github.com/fractalvm/fractal/notes"
)

// MaxCodeBytes bounds one deployed Lua fragment.
const MaxCodeBytes = 256 << 10

// CodeName is the chunk name deployed code runs under, which its errors
// mention: "code:" and the first 8 bytes of its SHA-256 in hex. It is part of
// what re-execution reproduces; the CLI shows the file name instead.
func CodeName(h notes.Hash) string { return fmt.Sprintf("code:%x", h[:8]) }
