package main

import (
	"os"
	"strings"

	"github.com/keyceremony/keyceremony/internal/airgap"
)

// The tests of this package, and the scripts (which run this test
// binary), see the network interfaces KEYCEREMONY_TEST_INTERFACES names
// ("eth9=10.0.0.9/24,wlan0"), besides loopback, instead of this
// machine's: whatever network the test machine has, a script states it.
// The pseudo-terminal tests run the built binary, which sees the
// machine's own.
func init() {
	interfaces = func() ([]airgap.Interface, error) {
		out := []airgap.Interface{{Name: "lo", Up: true, Loopback: true, Addrs: []string{"127.0.0.1/8"}}}
		spec := os.Getenv("KEYCEREMONY_TEST_INTERFACES")
		if spec == "" {
			return out, nil
		}
		for _, s := range strings.Split(spec, ",") {
			name, addr, _ := strings.Cut(s, "=")
			i := airgap.Interface{Name: name, Up: true}
			if addr != "" {
				i.Addrs = []string{addr}
			}
			out = append(out, i)
		}
		return out, nil
	}
}
