package main

import (
	"errors"
	"testing"
)

// What arca doctor reads of a Mac's tools, checked here on their output.
func TestMacFindings(t *testing.T) {
	const modern = `Executable=/Users/me/arca/bin/arca
[Dict]
	[Key] com.apple.security.virtualization
	[Value]
		[Bool] true
`
	const plist = `Executable=/Users/me/arca/bin/arca
??qq<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>com.apple.security.virtualization</key><true/></dict></plist>`
	const falseValue = `[Dict]
	[Key] com.apple.security.virtualization
	[Value]
		[Bool] false
	[Key] com.apple.security.network.client
	[Value]
		[Bool] true
`
	for _, tc := range []struct {
		name string
		out  string
		err  error
		want level
	}{
		{"modern", modern, nil, levelOK},
		{"plist", plist, nil, levelOK},
		{"false", falseValue, nil, levelFail},
		{"unsigned", "Executable=/x\n", nil, levelFail},
		{"codesign failed", "code object is not signed at all", errors.New("exit status 1"), levelFail},
	} {
		if f := entitlementFinding("/x/arca", tc.out, tc.err); f.level != tc.want || (f.level != levelOK && f.fix == "") {
			t.Errorf("entitlement %s: %+v", tc.name, f)
		}
	}
	for v, want := range map[string]level{"15.1": levelOK, "13.0": levelOK, "13": levelOK, "12.6.1": levelWarn, "12.2": levelFail, "11.7": levelFail, "": levelWarn, "x": levelWarn} {
		if f := macOSFinding(v); f.level != want {
			t.Errorf("macOS %q: %+v", v, f)
		}
	}
	for _, tc := range []struct {
		arch, translated string
		want             level
	}{{"arm64", "0", levelOK}, {"arm64", "", levelOK}, {"amd64", "1\n", levelFail}, {"amd64", "0", levelWarn}} {
		if f := translatedFinding(tc.arch, tc.translated); f.level != tc.want {
			t.Errorf("arch %s translated %q: %+v", tc.arch, tc.translated, f)
		}
	}
}
