package validator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	cfg "github.com/cometbft/cometbft/config"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
	"github.com/spf13/viper"

	"github.com/fractalvm/fractal/internal/atomicfile"
	"github.com/fractalvm/fractal/internal/inputfile"
)

// A validator's home folder holds a validator-set instance (config.json,
// db/, peers.json, zk/: package fractal) and, beside it, CometBFT's own
// files: config/config.toml, config/genesis.json, config/node_key.json,
// config/priv_validator_key.json, and data/ (its goleveldb stores, its
// consensus WAL and priv_validator_state.json). validator.json holds what
// the validator knows of its network beyond CometBFT's files
// (docs/formats/validator-set.md).
const (
	cometConfigFile = "config/config.toml"
	settingsFile    = "validator.json"
	instanceConfig  = "config.json"
)

// Bounds on the files read here (decision 088): a config.toml is a few
// KiB, a key file or validator.json less.
const (
	maxConfigFile   = 1 << 20
	maxKeyFile      = 64 << 10
	maxGenesisFile  = 64 << 20
	maxSettingsFile = 1 << 20
)

// IsHome reports whether home is a validator's home: a Fractal instance
// beside CometBFT's configuration and genesis.
func IsHome(home string) bool {
	for _, f := range []string{instanceConfig, cometConfigFile, "config/genesis.json"} {
		if _, err := os.Stat(filepath.Join(home, f)); err != nil {
			return false
		}
	}
	return true
}

// Settings is validator.json.
type Settings struct {
	Version int `json:"version"`
	// RPCPeers are the other validators' CometBFT RPC addresses
	// (http://host:port): when this validator's execution differs from
	// the network's, it asks them for their results to name the first
	// transaction that differs.
	RPCPeers []string `json:"rpc_peers"`
}

const settingsVersion = 1

func readSettings(home string) (*Settings, error) {
	raw, err := inputfile.Read(filepath.Join(home, settingsFile), maxSettingsFile)
	if errors.Is(err, os.ErrNotExist) {
		return &Settings{Version: settingsVersion}, nil
	}
	if err != nil {
		return nil, err
	}
	var s Settings
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", settingsFile, err)
	}
	if s.Version != settingsVersion {
		return nil, fmt.Errorf("%s: version %d, this program reads %d", settingsFile, s.Version, settingsVersion)
	}
	return &s, nil
}

func writeSettings(home string, s *Settings) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(home, settingsFile), append(raw, '\n'), 0o600)
}

// loadConfig reads home's config.toml as CometBFT's own command does
// (viper over the defaults), rooted at home.
func loadConfig(home string) (*cfg.Config, error) {
	raw, err := inputfile.Read(filepath.Join(home, cometConfigFile), maxConfigFile)
	if err != nil {
		return nil, err
	}
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("%s: %w", cometConfigFile, err)
	}
	c := cfg.DefaultConfig()
	if err := v.Unmarshal(c); err != nil {
		return nil, fmt.Errorf("%s: %w", cometConfigFile, err)
	}
	c.SetRoot(home)
	if err := c.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("%s: %w", cometConfigFile, err)
	}
	return c, nil
}

// readGenesis reads and checks the genesis CometBFT's config names,
// bounded (CometBFT's own reader is not).
func readGenesis(c *cfg.Config) (*types.GenesisDoc, error) {
	raw, err := inputfile.Read(c.GenesisFile(), maxGenesisFile)
	if err != nil {
		return nil, err
	}
	doc, err := types.GenesisDocFromJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.GenesisFile(), err)
	}
	return doc, nil
}

// loadFilePV reads the validator's consensus key and last-sign state.
// CometBFT's privval.LoadFilePV ends the process (os.Exit) on a missing or
// damaged file, so both are read and checked here first.
func loadFilePV(c *cfg.Config) (*privval.FilePV, error) {
	raw, err := inputfile.Read(c.PrivValidatorKeyFile(), maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("validator key: %w", err)
	}
	var key privval.FilePVKey
	if err := cmtjson.Unmarshal(raw, &key); err != nil || key.PrivKey == nil {
		return nil, fmt.Errorf("validator key %s is damaged: %v", c.PrivValidatorKeyFile(), err)
	}
	raw, err = inputfile.Read(c.PrivValidatorStateFile(), maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("validator sign state: %w", err)
	}
	var st privval.FilePVLastSignState
	if err := cmtjson.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("validator sign state %s is damaged: %v", c.PrivValidatorStateFile(), err)
	}
	return privval.LoadFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile()), nil
}

// loadNodeKey reads the node's P2P key, bounded (p2p.LoadNodeKey is not).
func loadNodeKey(c *cfg.Config) (*p2p.NodeKey, error) {
	raw, err := inputfile.Read(c.NodeKeyFile(), maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	var nk p2p.NodeKey
	if err := cmtjson.Unmarshal(raw, &nk); err != nil || nk.PrivKey == nil {
		return nil, fmt.Errorf("node key %s is damaged: %v", c.NodeKeyFile(), err)
	}
	return &nk, nil
}
