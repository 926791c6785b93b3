package validator

import (
	"path/filepath"
	"strings"
	"testing"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/spf13/viper"

	"github.com/fractalvm/fractal/fractal"
)

// TestDevnetOneDialerAPair: validator K's persistent peers are exactly
// validators 0…K−1, so no two validators dial each other (decision 185).
func TestDevnetOneDialerAPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	d, err := WriteDevnet(dir, DevnetOptions{Validators: 4, BasePort: freeBase(t, 4), Instance: fractal.DefaultConfig()})
	if err != nil {
		t.Fatal(err)
	}
	for k, home := range d.Homes {
		v := viper.New()
		v.SetConfigFile(filepath.Join(home, "config", "config.toml"))
		if err := v.ReadInConfig(); err != nil {
			t.Fatal(err)
		}
		c := cfg.DefaultConfig()
		if err := v.Unmarshal(c); err != nil {
			t.Fatal(err)
		}
		want := strings.Join(d.P2P[:k], ",")
		if c.P2P.PersistentPeers != want {
			t.Errorf("v%d persistent_peers %q, want %q", k, c.P2P.PersistentPeers, want)
		}
	}
}
