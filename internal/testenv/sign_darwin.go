package testenv

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// sign signs the daemon ad hoc with the virtualization entitlement, as
// make build does: macOS refuses to start VMs for an unsigned binary.
func sign(root, bin string) error {
	ent := filepath.Join(root, "scripts", "macos", "arca.entitlements")
	out, err := exec.Command("codesign", "--force", "--entitlements", ent, "-s", "-", bin).CombinedOutput()
	if err != nil {
		return fmt.Errorf("codesign %s: %w: %s", bin, err, strings.TrimSpace(string(out)))
	}
	return nil
}
