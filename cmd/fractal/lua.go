package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fractalvm/fractal/internal/inputfile"
	"github.com/fractalvm/fractal/vp"
)

func init() {
	luaRunCmd.Flags().Uint64("gas", vp.DefaultLimits().Gas, "gas budget for the run")
	luaRunCmd.Flags().Uint64("seed", 0, "seed of math.random")
	luaCmd.AddCommand(luaRunCmd)
	rootCmd.AddCommand(luaCmd)
}

// luaRunJSON is what `lua run` prints with --json.
type luaRunJSON struct {
	Values  []any    `json:"values"`
	GasUsed uint64   `json:"gas_used"`
	Log     []string `json:"log"`
	Error   string   `json:"error,omitempty"`
}

var luaCmd = &cobra.Command{
	Use:   "lua",
	Short: "Run Lua fragments in Fractal's sandbox",
	Long: `lua runs Lua fragments in the same sandbox that runs transactions' lookup
and calculation code and validity predicates: safe libraries only,
deterministic gas, and caps on memory, string size, table size and call
depth.`,
}

var luaRunCmd = &cobra.Command{
	Use:   "run FILE",
	Short: "Run one fragment and print its return values, gas used and log",
	Long: `run compiles FILE in the sandbox, runs it with the default limits and the
gas budget of --gas, and prints what the fragment returned (one line,
"return v1, v2, ..." with values written as JSON), the gas it used, and one
"print" line per call of print.

A refusal (a syntax error, a forbidden construct, a Lua error, running out
of gas, a limit) exits with status 1 and the reason as
"fractal: FILE:LINE: ..." on stderr, after printing the gas used and log.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		src, err := inputfile.Read(args[0], vp.MaxSource)
		if err != nil {
			return fmt.Errorf("lua run: %w", err)
		}
		prog, err := vp.Compile(filepath.Base(args[0]), src)
		if err != nil {
			return err
		}
		lim := vp.DefaultLimits()
		lim.Gas, _ = cmd.Flags().GetUint64("gas")
		seed, _ := cmd.Flags().GetUint64("seed")
		res, runErr := vp.NewPool().Run(prog, vp.Call{Limits: lim, Seed: seed})
		out := luaRunJSON{Values: res.Values, GasUsed: res.GasUsed, Log: res.Log}
		if out.Values == nil {
			out.Values = []any{}
		}
		if out.Log == nil {
			out.Log = []string{}
		}
		if runErr != nil {
			out.Error = runErr.Error()
		}
		if err := emit(cmd, out, func(w io.Writer) {
			if runErr == nil {
				vals := make([]string, len(res.Values))
				for i, v := range res.Values {
					b, _ := json.Marshal(v)
					vals[i] = string(b)
				}
				fmt.Fprintln(w, strings.TrimSpace("return "+strings.Join(vals, ", ")))
			}
			fmt.Fprintf(w, "gas %d\n", res.GasUsed)
			for _, l := range res.Log {
				fmt.Fprintf(w, "print %s\n", l)
			}
		}); err != nil {
			return err
		}
		return runErr
	},
}
