package airgap

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/internal/hint"
)

func list(ifs ...Interface) Lister {
	return func() ([]Interface, error) { return ifs, nil }
}

var (
	lo    = Interface{Name: "lo", Up: true, Loopback: true, Addrs: []string{"127.0.0.1/8"}}
	eth0  = Interface{Name: "eth0", Up: true, Addrs: []string{"192.0.2.10/24"}}
	wlan0 = Interface{Name: "wlan0", Up: true}
	down  = Interface{Name: "eth1"}
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		ifs  []Interface
		ack  []string
		up   []string // what Result.Up names, on success
		err  []string // what the error says, on failure
		net  bool     // the error is ErrNetwork
	}{
		{name: "air-gapped", ifs: []Interface{lo, down}},
		{name: "one up, not acknowledged", ifs: []Interface{lo, eth0}, err: []string{"eth0 (192.0.2.10/24) not acknowledged"}, net: true},
		{name: "one up, acknowledged", ifs: []Interface{lo, eth0}, ack: []string{"eth0"}, up: []string{"eth0"}},
		{name: "two up, one acknowledged", ifs: []Interface{wlan0, eth0}, ack: []string{"eth0"}, err: []string{"wlan0 not acknowledged"}, net: true},
		{name: "two up, both acknowledged in any order", ifs: []Interface{wlan0, eth0}, ack: []string{"wlan0", "eth0"}, up: []string{"eth0", "wlan0"}},
		{name: "an acknowledgement for another laptop", ifs: []Interface{lo}, ack: []string{"eth0"}, err: []string{"eth0 is not up", "up: none"}},
		{name: "a down interface acknowledged", ifs: []Interface{eth0, down}, ack: []string{"eth0", "eth1"}, err: []string{"eth1 is not up", "up: eth0"}},
		{name: "acknowledged twice", ifs: []Interface{eth0}, ack: []string{"eth0", "eth0"}, err: []string{`"eth0" acknowledged twice`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Check(list(c.ifs...), c.ack)
			if c.err != nil {
				if err == nil {
					t.Fatalf("passed: %+v", res)
				}
				for _, w := range c.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if errors.Is(err, ErrNetwork) != c.net {
					t.Errorf("errors.Is(ErrNetwork) = %v", !c.net)
				}
				if c.net && hint.Of(err) == "" {
					t.Error("no advice for the room")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range res.Up {
				got = append(got, u.Name)
			}
			if strings.Join(got, ",") != strings.Join(c.up, ",") {
				t.Errorf("up %v, want %v", got, c.up)
			}
			if len(c.ack) > 0 && strings.Join(res.Acknowledged, ",") != strings.Join(c.up, ",") {
				t.Errorf("acknowledged %v", res.Acknowledged)
			}
		})
	}
}

func TestListerError(t *testing.T) {
	boom := errors.New("netlink refused")
	_, err := Check(func() ([]Interface, error) { return nil, boom }, nil)
	if !errors.Is(err, boom) {
		t.Fatalf("%v", err)
	}
}

// TestSystem reads this machine's interfaces: loopback is never reported
// as up, and whatever System reports as up is what Check wants named.
func TestSystem(t *testing.T) {
	up, err := Up(nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range up {
		if u.Loopback || !u.Up {
			t.Errorf("%+v reported as up", u)
		}
		names = append(names, u.Name)
	}
	if _, err := Check(System, names); err != nil {
		t.Fatalf("acknowledging what is up: %v", err)
	}
	if len(names) > 0 {
		if _, err := Check(System, nil); !errors.Is(err, ErrNetwork) {
			t.Fatalf("nothing acknowledged with %v up: %v", names, err)
		}
	}
}

func TestParseAck(t *testing.T) {
	for in, want := range map[string]string{"": "", "eth0": "eth0", "eth0,wlan0": "eth0|wlan0"} {
		got, err := ParseAck(in)
		if err != nil || strings.Join(got, "|") != want {
			t.Errorf("ParseAck(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{",", "eth0,", "eth0, wlan0", " eth0"} {
		if _, err := ParseAck(bad); err == nil {
			t.Errorf("ParseAck(%q) accepted", bad)
		}
	}
}

// FuzzParseAck: a list is accepted only if it splits back into the input,
// with no empty or space-padded name.
func FuzzParseAck(f *testing.F) {
	for _, s := range []string{"", "eth0", "eth0,wlan0", ",", "eth0, wlan0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAck(s)
		if err != nil {
			return
		}
		if strings.Join(got, ",") != s {
			t.Fatalf("%q parsed as %q", s, got)
		}
		for _, n := range got {
			if n == "" || strings.TrimSpace(n) != n {
				t.Fatalf("%q gave the name %q", s, n)
			}
		}
	})
}
