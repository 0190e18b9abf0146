package kit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/arcavm/arca/guest/wire"
)

// Initramfs packs the guest's initramfs into dir, once per agent and kit:
// the daemon's own arca-agent as /init and the kit's modules. It is packed
// here rather than by the kit script so that the agent in a VM is always
// the one the daemon was started with. Returns the archive's path.
func Initramfs(k *Kit, agentPath, dir string) (string, error) {
	agentBin, err := os.ReadFile(agentPath)
	if err != nil {
		return "", fmt.Errorf("pack initramfs: %w", err)
	}
	var buf bytes.Buffer
	if err := writeInitramfs(&buf, k, agentBin); err != nil {
		return "", fmt.Errorf("pack initramfs: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	path := filepath.Join(dir, "initramfs-"+hex.EncodeToString(sum[:8])+".cpio")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("pack initramfs: %w", err)
	}
	if err := WriteFileAtomic(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("pack initramfs: %w", err)
	}
	return path, nil
}

// writeInitramfs writes the archive: directories, /dev/console (the kernel
// opens it for init's stdio before any devtmpfs), /init, the modules and
// the boot list VMInit reads.
func writeInitramfs(w io.Writer, k *Kit, agentBin []byte) error {
	c := newCPIOWriter(w)
	dirs := []string{"dev", "proc", "sys", "run", "mnt", "etc", "etc/arca", "lib", "lib/modules",
		strings.TrimPrefix(wire.VMModuleDir, "/")}
	for _, d := range dirs {
		if err := c.Add(cpioEntry{Name: d, Mode: fs.ModeDir | 0o755}); err != nil {
			return err
		}
	}
	if err := c.Add(cpioEntry{Name: "dev/console", Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, Major: 5, Minor: 1}); err != nil {
		return err
	}
	if err := c.Add(cpioEntry{Name: "init", Mode: 0o755, Data: agentBin}); err != nil {
		return err
	}
	for _, p := range k.ModulePaths() {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(wire.VMModuleDir, "/") + "/" + filepath.Base(p)
		if err := c.Add(cpioEntry{Name: name, Mode: 0o644, Data: unsignedModule(b)}); err != nil {
			return err
		}
	}
	// The extras need no list: the agent loads them by name, with the
	// dependencies their own .modinfo names.
	list := strings.Join(k.Boot, "\n") + "\n"
	if err := c.Add(cpioEntry{Name: strings.TrimPrefix(wire.VMModuleList, "/"), Mode: 0o644, Data: []byte(list)}); err != nil {
		return err
	}
	return c.Close()
}

// moduleSigMagic ends a signed kernel module: the module, its signature,
// a 12-byte descriptor whose last 4 bytes are the signature's length
// (big-endian), then this marker.
const moduleSigMagic = "~Module signature appended~\n"

// unsignedModule drops a module's appended signature. Checking it costs
// the guest a hash of the whole module and a public-key verification per
// module, slow under TCG (a third of the boot modules' load time here);
// Debian's kernel does not insist on signatures without Secure Boot, and
// the modules come from the kit the daemon packed itself. Anything that is
// not a well-formed signed module is returned as it is.
func unsignedModule(b []byte) []byte {
	const descLen = 12
	if !bytes.HasSuffix(b, []byte(moduleSigMagic)) || len(b) < len(moduleSigMagic)+descLen {
		return b
	}
	end := len(b) - len(moduleSigMagic)
	sigLen := int(binary.BigEndian.Uint32(b[end-4 : end]))
	if sigLen <= 0 || sigLen > end-descLen {
		return b
	}
	return b[:end-descLen-sigLen]
}

// WriteFileAtomic writes data to path through a temporary file and a
// rename, so a concurrent reader never sees half a file.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
