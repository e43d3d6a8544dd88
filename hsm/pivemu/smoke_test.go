package pivemu_test

import (
	"log"
	"testing"

	"github.com/go-piv/piv-go/v2/piv"

	"github.com/keyceremony/keyceremony/hsm/pivemu"
	"github.com/keyceremony/keyceremony/hsm/pivemu/pcsctest"
)

func TestSmoke(t *testing.T) {
	cfg := pivemu.Config{}; _ = log.Printf
	env := pcsctest.Start(t, 3, cfg, cfg, cfg)
	t.Logf("readers %q addrs %q", env.Readers, env.Addrs)
	yk, err := piv.Open(env.Readers[2])
	if err != nil {
		t.Fatal(err)
	}
	defer yk.Close()
	s, err := yk.Serial()
	t.Log(s, err, yk.Version())
}
