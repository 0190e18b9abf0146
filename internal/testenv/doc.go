// Package testenv is the harness for Arca's end-to-end tests: a real registry
// (Debian's docker-registry) with a real busybox image in it, the arca daemon
// built with the race detector and started on a temp socket, and the real
// docker CLI and the moby Go client pointed at it.
//
// Each helper takes a testing.TB, fails it on error and registers its own
// cleanup, so a test reads:
//
//	func TestRunEcho(t *testing.T) {
//		reg := testenv.Registry(t)
//		img := testenv.PushBusybox(t, reg)
//		d := testenv.StartDaemon(t, testenv.Options{})
//		res := d.Docker(t, "run", "--rm", img, "echo", "hi").Must(t)
//		if res.Stdout != "hi\n" { t.Fatalf("stdout %q", res.Stdout) }
//	}
//
// Starting a daemon takes a moment and the first one in a test binary pays
// for building arca with -race (tens of seconds on two cores), so tests in a
// package should share one registry and one daemon unless they need their own
// (crash and restart tests do). The shared ones outlive single tests; let
// testenv.Main stop them and check the daemon's log:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestPs(t *testing.T) {
//		d := testenv.SharedDaemon(t)
//		img := testenv.SharedBusybox(t).Ref
//		d.Docker(t, "run", "-d", "--name", testenv.Name(t), img, "sleep", "60").Must(t)
//		...
//	}
//
// Tests on a shared daemon must not assume it is empty: name containers after
// the test (Name) and filter on those names.
//
// Helpers skip the test when the machine cannot run it (not root, or
// docker-registry / the docker CLI missing), and fail it instead when CI
// is set (internal/prereq): `make deps` installs them, so in CI a missing
// one is a broken install step, never a silent skip.
//
// Environment knobs, for debugging by hand:
//
//	ARCA_TEST_ARCA, ARCA_TEST_AGENT  use these binaries instead of building them
//	ARCA_TEST_KEEP=1                 keep temp dirs (daemon root, logs) after the test
//	ARCA_TEST_DRIVER=vz              the daemons' --driver (default sandbox); a Mac runs the suite on vz
package testenv
