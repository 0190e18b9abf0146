package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/arcavm/arca/guest/vm/kit"
	"github.com/arcavm/arca/guest/wire"
)

// ProbeTimeout bounds the KVM probe's boot, to the agent answering. A
// working KVM gets there in well under a second; on some hosts /dev/kvm
// exists but a guest hangs, which only this deadline reveals.
const ProbeTimeout = 3 * time.Second

// probeFile holds the last verdict: "KEY\nACCEL\n".
const probeFile = "kvm-probe"

// probe says whether KVM really boots the kit here: "kvm" or "tcg". The
// verdict is cached in the daemon's root, keyed by kernel and qemu version,
// so only the first start after either changes pays for it.
func (d *Driver) probe(ctx context.Context) string {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return AccelTCG
	}
	key := d.kit.Release + " " + qemuVersion(d.cfg.QEMU)
	return cachedVerdict(filepath.Join(d.cfg.Root, "qemu", probeFile), key, func() error {
		start := time.Now()
		err := d.bootProbe(ctx, AccelKVM, ProbeTimeout)
		d.cfg.Log.Info("qemu: KVM probe", "ok", err == nil, "took", time.Since(start).Round(time.Millisecond), "err", err)
		return err
	})
}

// cachedVerdict returns the verdict cached under key in file, or runs boot
// and caches its outcome: kvm if it succeeded, else tcg.
func cachedVerdict(file, key string, boot func() error) string {
	if b, err := os.ReadFile(file); err == nil {
		k, v, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if k == key && (v == AccelKVM || v == AccelTCG) {
			return v
		}
	}
	verdict := AccelTCG
	if boot() == nil {
		verdict = AccelKVM
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err == nil {
		kit.WriteFileAtomic(file, []byte(key+"\n"+verdict+"\n"))
	}
	return verdict
}

// bootProbe boots a diskless machine with accel and waits for its agent to
// answer a ping; the machine is killed either way, so a hung guest never
// outlives the deadline.
func (d *Driver) bootProbe(ctx context.Context, accel string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dir, err := os.MkdirTemp(filepath.Join(d.cfg.Root, "qemu"), "probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l := d.launch(dir, 0, 0)
	l.Accel = accel
	m, err := d.start(l, nil, nil)
	if err != nil {
		return err
	}
	defer m.Kill()
	c, err := wire.NewClient(m.Conn())
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("no agent within %s", timeout)
		}
		return err
	}
	return nil
}

// qemuVersion is the first line of qemu -version, or "" if it won't say.
func qemuVersion(qemu string) string {
	out, err := exec.Command(qemu, "-version").Output()
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(first)
}
