package main

import (
	"strconv"
	"strings"
)

// What arca doctor checks of a Mac, as plain logic over what macOS's tools
// print, so it is tested on Linux too; doctor_darwin.go runs the tools.

// virtualizationEntitlement is what the Virtualization framework demands
// of a process before it makes a VM.
const virtualizationEntitlement = "com.apple.security.virtualization"

// entitlementFinding reads `codesign -d --entitlements - BINARY`: the
// entitlement must be there and true. codesign prints the entitlements as
// "[Key] ... [Value] [Bool] true" since macOS 12, as a plist before.
func entitlementFinding(binary, out string, err error) finding {
	const fix = "make build signs bin/arca with the entitlement (codesign --entitlements scripts/macos/arca.entitlements -s -); a binary rebuilt by go build alone has none"
	if err != nil {
		return fail("signed", fix, "codesign cannot read %s's signature: %v", binary, err)
	}
	i := strings.Index(out, virtualizationEntitlement)
	if i < 0 {
		return fail("signed", fix, "%s lacks the %s entitlement: the framework will refuse every VM", binary, virtualizationEntitlement)
	}
	rest := out[i+len(virtualizationEntitlement):]
	// Only this entitlement's value: up to the next key.
	for _, next := range []string{"[Key]", "<key>"} {
		if j := strings.Index(rest, next); j >= 0 {
			rest = rest[:j]
		}
	}
	if !strings.Contains(rest, "[Bool] true") && !strings.Contains(rest, "<true/>") {
		return fail("signed", fix, "%s has the %s entitlement, but not set to true", binary, virtualizationEntitlement)
	}
	return ok("signed", "%s has the %s entitlement", binary, virtualizationEntitlement)
}

// macOSFinding reads sw_vers's product version: 13 is the version
// supported; 12.3 has every framework call the driver makes.
func macOSFinding(product string) finding {
	const fix = "update macOS to 13 or later"
	major, minor, okv := parseOSVersion(product)
	switch {
	case !okv:
		return warn("macos", "", "cannot read the macOS version %q", product)
	case major >= 13:
		return ok("macos", "macOS %s", product)
	case major == 12 && minor >= 3:
		return warn("macos", fix, "macOS %s: the driver's framework calls exist, but only 13 and later are supported", product)
	}
	return fail("macos", fix, "macOS %s: the vz driver needs 12.3 at least (block device identifiers), and 13 is supported", product)
}

func parseOSVersion(s string) (major, minor int, ok bool) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	major, err := strconv.Atoi(parts[0])
	if err != nil {
		return 0, 0, false
	}
	if len(parts) > 1 {
		if minor, err = strconv.Atoi(parts[1]); err != nil {
			return 0, 0, false
		}
	}
	return major, minor, true
}

// translatedFinding: an arm64 Mac running an amd64 arca under Rosetta
// cannot make arm64 VMs (sysctl.proc_translated is 1 under Rosetta).
func translatedFinding(goarch, translated string) finding {
	if strings.TrimSpace(translated) == "1" {
		return fail("arch", "build arca for arm64 (make build with an arm64 Go)", "arca is an %s binary running under Rosetta", goarch)
	}
	if goarch != "arm64" {
		return warn("arch", "", "arca is built for %s: only Apple silicon (arm64) has been tried", goarch)
	}
	return ok("arch", "arm64, native")
}
