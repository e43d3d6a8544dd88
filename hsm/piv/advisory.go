package piv

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/keyceremony/keyceremony/hsm"
)

// ErrAffectedFirmware is returned by CheckRootKey for a key that Yubico
// security advisory YSA-2024-03 says may be recovered from the device.
var ErrAffectedFirmware = errors.New("firmware affected by Yubico security advisory YSA-2024-03")

// YSA202403 is the advisory's summary as shown to the people in the room.
const YSA202403 = "Yubico security advisory YSA-2024-03 (EUCLEAK): ECDSA private keys on YubiKey 5 " +
	"firmware before 5.7.0 (5.7.2 for FIPS models) can be recovered by an attacker who holds " +
	"the device with specialised equipment (a side channel in Infineon's library); " +
	"see https://www.yubico.com/support/security-advisories/ysa-2024-03/"

// Advisories returns the security advisories that apply to keys of
// algorithm alg on the device described by info: nothing for devices that
// are not YubiKeys, and nothing when the firmware cannot be read.
func Advisories(info hsm.Info, alg hsm.Algorithm) []string {
	if info.Kind != Kind || alg != hsm.AlgECCP256 {
		return nil
	}
	v, ok := parseVersion(info.Firmware)
	if !ok {
		return []string{fmt.Sprintf("firmware %q cannot be read, so %s", info.Firmware, YSA202403)}
	}
	fixed := [3]int{5, 7, 0}
	if strings.Contains(info.FormFactor, "FIPS") {
		fixed = [3]int{5, 7, 2}
	}
	if less(v, fixed) {
		return []string{fmt.Sprintf("firmware %s is affected: %s", info.Firmware, YSA202403)}
	}
	return nil
}

// CheckRootKey refuses a root key of algorithm alg on a device that an
// advisory applies to, unless allowAffected is set (the ceremony's
// explicit override, recorded in its transcript). The error wraps
// ErrAffectedFirmware and says what the advisory is.
func CheckRootKey(info hsm.Info, alg hsm.Algorithm, allowAffected bool) error {
	adv := Advisories(info, alg)
	if len(adv) == 0 || allowAffected {
		return nil
	}
	return fmt.Errorf("refusing a %s root key on %s: %s: %w", alg, info, adv[0], ErrAffectedFirmware)
}

// parseVersion reads "5.7.1".
func parseVersion(s string) ([3]int, bool) {
	var v [3]int
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
