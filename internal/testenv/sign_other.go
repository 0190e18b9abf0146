//go:build !darwin

package testenv

// sign is needed on macOS only (see sign_darwin.go).
func sign(root, bin string) error { return nil }
