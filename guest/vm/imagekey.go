package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"regexp"
	"strings"
)

// ImageKey names an image's ext4 disk: the top layer's chain ID (its
// directory is layers/<chainID>/diff), which fixes every layer beneath.
// Anything else (tests' ad hoc dirs) is keyed by a hash of the paths.
// The VM drivers name their cached image disks by it.
func ImageKey(layers []string) string {
	top := filepath.Clean(layers[len(layers)-1])
	name := filepath.Base(top)
	if name == "diff" {
		name = filepath.Base(filepath.Dir(top))
	}
	if chainIDRe.MatchString(name) {
		return name
	}
	sum := sha256.Sum256([]byte(strings.Join(layers, "\x00")))
	return "paths-" + hex.EncodeToString(sum[:16])
}

var chainIDRe = regexp.MustCompile(`^[0-9a-f]{64}$`)
