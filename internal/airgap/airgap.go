// Package airgap checks, at the start of a ceremony, that the laptop has
// no network: it lists the interfaces that are up other than loopback,
// and lets a ceremony go on past them only when the room acknowledges
// exactly those interfaces by name.
//
// It promises: an interface that is up and not loopback is never passed
// over in silence; an acknowledgement counts only when it names every
// such interface and nothing else (so a blanket "yes" or a stale list
// from another laptop does not pass); and the result says what was seen
// and what was acknowledged, for the transcript. It reads the interfaces
// through a function, so tests give their own.
package airgap

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/keyceremony/keyceremony/internal/hint"
)

// ErrNetwork is wrapped by the error of a check that found interfaces up
// that the acknowledgement does not name exactly.
var ErrNetwork = hint.New("network interfaces are up on the ceremony laptop",
	"disconnect them (unplug the cable, switch off the radio, or `ip link set DEV down`), or, for a rehearsal, acknowledge them by name with --network-ack")

// Interface is a network interface as a Lister reports it.
type Interface struct {
	Name     string   `json:"name"`
	Addrs    []string `json:"addrs,omitempty"`
	Up       bool     `json:"-"`
	Loopback bool     `json:"-"`
}

// Lister returns the machine's network interfaces.
type Lister func() ([]Interface, error)

// System lists this machine's interfaces (net.Interfaces).
func System() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]Interface, 0, len(ifs))
	for _, i := range ifs {
		u := Interface{Name: i.Name, Up: i.Flags&net.FlagUp != 0, Loopback: i.Flags&net.FlagLoopback != 0}
		if addrs, err := i.Addrs(); err == nil {
			for _, a := range addrs {
				u.Addrs = append(u.Addrs, a.String())
			}
		}
		out = append(out, u)
	}
	return out, nil
}

// Result is what a check saw and what the room acknowledged.
type Result struct {
	Up           []Interface `json:"up"`
	Acknowledged []string    `json:"acknowledged,omitempty"`
}

// Up returns the interfaces that are up and not loopback, by name. A nil
// list reads the machine's own.
func Up(list Lister) ([]Interface, error) {
	if list == nil {
		list = System
	}
	ifs, err := list()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	var up []Interface
	for _, i := range ifs {
		if i.Up && !i.Loopback {
			up = append(up, i)
		}
	}
	slices.SortFunc(up, func(a, b Interface) int { return strings.Compare(a.Name, b.Name) })
	return up, nil
}

// Check lists the interfaces that are up and compares them with ack, the
// names the room acknowledged. It passes when none is up and ack is
// empty, or when ack names exactly the interfaces up; otherwise the
// error names what is up and what ack lacks or names in excess.
func Check(list Lister, ack []string) (*Result, error) {
	up, err := Up(list)
	if err != nil {
		return nil, err
	}
	res := &Result{Up: up}
	seen := map[string]bool{}
	for _, u := range up {
		seen[u.Name] = true
	}
	acked := map[string]bool{}
	var extra []string
	for _, a := range ack {
		if acked[a] {
			return nil, fmt.Errorf("interface %q acknowledged twice", a)
		}
		acked[a] = true
		if !seen[a] {
			extra = append(extra, a)
		}
	}
	var missing []string
	for _, u := range up {
		if !acked[u.Name] {
			missing = append(missing, describe(u))
		}
	}
	switch {
	case len(missing) > 0:
		return nil, fmt.Errorf("%w: %s not acknowledged", ErrNetwork, strings.Join(missing, ", "))
	case len(extra) > 0:
		return nil, fmt.Errorf("acknowledged interface %s is not up on this laptop (up: %s): acknowledge what this laptop shows", strings.Join(extra, ", "), names(up))
	}
	res.Acknowledged = slices.Sorted(slices.Values(ack))
	return res, nil
}

func describe(u Interface) string {
	if len(u.Addrs) == 0 {
		return u.Name
	}
	return u.Name + " (" + strings.Join(u.Addrs, " ") + ")"
}

func names(up []Interface) string {
	if len(up) == 0 {
		return "none"
	}
	ns := make([]string, len(up))
	for i, u := range up {
		ns[i] = u.Name
	}
	return strings.Join(ns, ", ")
}

// ParseAck reads a comma-separated list of interface names, as given to
// --network-ack; "" is none.
func ParseAck(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	for _, p := range parts {
		if p == "" || strings.TrimSpace(p) != p {
			return nil, fmt.Errorf("--network-ack %q: names are separated by single commas, without spaces", s)
		}
	}
	return parts, nil
}
