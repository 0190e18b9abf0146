package qemu

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

const (
	// maxTemplates is how many shapes' templates are kept; the least
	// recently used go first. Each holds what a booted guest touched of
	// its memory (~110 MiB).
	maxTemplates = 8
	// templateBootWait bounds a template's boot: a cold boot under TCG
	// takes ~2 s, more on a loaded host.
	templateBootWait = time.Minute
	// templateRetry is how long a shape whose template failed boots cold
	// before its template is tried again (a host too loaded to boot one
	// in time may be quieter by then).
	templateRetry = 10 * time.Minute
)

// templates is the driver's store of templates, in dir, one per shape.
type templates struct {
	dir   string
	log   *slog.Logger
	build func(ctx context.Context, shape launch, dir string) error

	mu      sync.Mutex
	entries map[string]*templateEntry // by key, once asked for
}

// templateEntry is one shape's template: ready once done is closed, with
// err why it could not be made (its machines then boot cold, until
// templateRetry has passed since, at).
type templateEntry struct {
	done chan struct{}
	err  error
	at   time.Time
}

// stale reports whether e failed long enough ago to be tried again.
func (e *templateEntry) stale() bool {
	select {
	case <-e.done:
		return e.err != nil && time.Since(e.at) > templateRetry
	default:
		return false
	}
}

// openTemplates opens the store under parent for machines of identity
// (what a template depends on beyond its command line: the emulator's and
// the kernel's files). Other identities' templates are removed: nothing
// can restore them any more.
func openTemplates(parent, identity string, log *slog.Logger, build func(context.Context, launch, string) error) (*templates, error) {
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if e.Name() != identity {
			os.RemoveAll(filepath.Join(parent, e.Name()))
		}
	}
	dir := filepath.Join(parent, identity)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	// Builds a killed daemon left half done.
	if stale, _ := filepath.Glob(filepath.Join(dir, ".build-*")); len(stale) > 0 {
		for _, s := range stale {
			os.RemoveAll(s)
		}
	}
	return &templates{dir: dir, log: log, build: build, entries: map[string]*templateEntry{}}, nil
}

// identity names what templates depend on besides their command line:
// the emulator and kernel files, which an upgrade replaces in place, and
// the host's boot (a template from before a crash may be torn).
func identity(files ...string) string {
	h := sha256.New()
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	h.Write(bootID)
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00", f)
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(h, "%d\x00%d\x00", st.Size(), st.ModTime().UnixNano())
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// get returns the directory of shape's template, made the first time
// (machines asking meanwhile wait for the same one).
func (t *templates) get(ctx context.Context, shape launch) (string, error) {
	key := shape.key()
	dir := filepath.Join(t.dir, key)
	t.mu.Lock()
	e, ok := t.entries[key]
	if !ok || e.stale() {
		e = &templateEntry{done: make(chan struct{})}
		t.entries[key] = e
		go t.make(e, shape, dir)
	}
	t.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if e.err != nil {
		return "", e.err
	}
	now := time.Now()
	os.Chtimes(dir, now, now) // for the pruning's least recently used
	return dir, nil
}

// make readies e: the template a daemon made before, else a new one. Its
// own context: a machine that stops waiting does not stop the others'.
func (t *templates) make(e *templateEntry, shape launch, dir string) {
	defer close(e.done)
	if complete(dir) {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*templateBootWait)
	defer cancel()
	if err := t.build(ctx, shape, dir); err != nil {
		e.err, e.at = fmt.Errorf("template %s: %w", filepath.Base(dir), err), time.Now()
		t.log.Warn("qemu template failed: machines of its shape boot cold", "err", e.err)
		return
	}
	t.log.Info("qemu template made", "template", filepath.Base(dir), "took", time.Since(start))
	t.prune(filepath.Base(dir))
}

// discard drops the template in dir: the next machine of its shape makes
// it anew.
func (t *templates) discard(dir string) {
	t.mu.Lock()
	delete(t.entries, filepath.Base(dir))
	t.mu.Unlock()
	os.RemoveAll(dir)
}

func complete(dir string) bool {
	for _, f := range []string{templateRAM, templateState} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// prune removes the least recently used templates beyond maxTemplates,
// never keep. A machine restoring one keeps its files open.
func (t *templates) prune(keep string) {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return
	}
	type used struct {
		name string
		at   time.Time
	}
	var all []used
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.Name() == keep {
			continue
		}
		if info, err := e.Info(); err == nil {
			all = append(all, used{e.Name(), info.ModTime()})
		}
	}
	slices.SortFunc(all, func(a, b used) int { return b.at.Compare(a.at) })
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := maxTemplates - 1; i < len(all); i++ {
		os.RemoveAll(filepath.Join(t.dir, all[i].name))
		delete(t.entries, all[i].name)
	}
}

// buildTemplate boots shape as a template in a directory beside dir,
// snapshots it once its agent is ready, and moves the result to dir.
func (d *Driver) buildTemplate(ctx context.Context, shape launch, dir string) (err error) {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	l, err := shape.placeholders(tmp)
	if err != nil {
		return err
	}
	// The template's memory is first a memfd: a guest booting on a file
	// on disk pays for every page it touches (~1.3 s of a 2 s boot on
	// ext4), and a memfd leaves nothing behind if the daemon dies.
	memfd, err := unix.MemfdCreate("arca-template-ram", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("memfd: %w", err)
	}
	ram := os.NewFile(uintptr(memfd), "template-ram")
	defer ram.Close()
	ramFD := l.StreamFD + 2
	l.RAM = &ramFile{Path: fmt.Sprintf("/proc/self/fd/%d", ramFD), Shared: true}
	state, err := os.Create(filepath.Join(tmp, templateState))
	if err != nil {
		return err
	}
	defer state.Close()
	qmpGuest, qmpConn, err := qmpPair()
	if err != nil {
		return err
	}
	defer qmpGuest.Close()
	defer qmpConn.Close()
	l.QMPFD = l.StreamFD + 1
	start := time.Now()
	m, err := d.start(l, []*os.File{qmpGuest, ram}, nil)
	if err != nil {
		return err
	}
	defer m.Kill()
	qmpGuest.Close()

	deadline := time.Now().Add(templateBootWait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	m.conn.SetReadDeadline(deadline)
	if err := wire.ReadReady(m.conn); err != nil {
		// The stream ends with qemu: say why it ended, if it did.
		select {
		case <-m.done:
			if m.err != nil {
				return fmt.Errorf("boot: %w", m.err)
			}
		case <-time.After(time.Second):
		}
		return fmt.Errorf("boot: %w%s", err, detail(m.stderr.String(), tailFile(l.Console)))
	}
	booted := time.Since(start)
	qmpConn.SetDeadline(deadline)
	q, err := newQMP(qmpConn)
	if err != nil {
		return err
	}
	if err := q.ignoreShared(); err != nil {
		return err
	}
	// Outgoing migration takes only a file passed over QMP itself.
	if err := q.sendFD("state", state); err != nil {
		return err
	}
	// Live, so that the state says the guest ran: its restores run as
	// soon as they are loaded. It sits in a read, so nothing else moves.
	if _, err := q.do("migrate", map[string]any{"uri": "fd:state"}); err != nil {
		return err
	}
	if err := q.migrated(); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	m.Kill()
	if err := copyMemory(filepath.Join(tmp, templateRAM), ram); err != nil {
		return err
	}
	d.cfg.Log.Debug("qemu template snapshotted", "booted", booted, "took", time.Since(start))
	return keepTemplate(tmp, dir)
}

// copyMemory writes the guest memory in src to a new file at path,
// only the pages the guest touched: the rest stay holes, as in src.
func copyMemory(path string, src *os.File) error {
	st, err := src.Stat()
	if err != nil {
		return err
	}
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := dst.Truncate(st.Size()); err != nil {
		return err
	}
	fd := int(src.Fd())
	buf := make([]byte, 1<<20)
	for off := int64(0); off < st.Size(); {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // holes to the end
		}
		if err != nil {
			return fmt.Errorf("template memory: %w", err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("template memory: %w", err)
		}
		for off = data; off < hole; {
			n, err := src.ReadAt(buf[:min(int64(len(buf)), hole-off)], off)
			if err != nil {
				return fmt.Errorf("template memory: %w", err)
			}
			if _, err := dst.WriteAt(buf[:n], off); err != nil {
				return fmt.Errorf("template memory: %w", err)
			}
			off += int64(n)
		}
	}
	return dst.Close()
}

// keepTemplate drops a built template's placeholders and moves it into
// place. Its files need no fsync: the templates' identity holds the
// host's boot, so a template torn by a crash is never restored.
func keepTemplate(tmp, dir string) error {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if name := e.Name(); name != templateRAM && name != templateState {
			os.RemoveAll(filepath.Join(tmp, name))
		}
	}
	os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}

// placeholders makes, in dir, what a template boots with in place of a
// machine's own: small empty disks, empty directories for the shares
// and the console log, and returns shape with their paths.
func (l launch) placeholders(dir string) (launch, error) {
	disk := func(name string) (string, error) {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			return "", err
		}
		defer f.Close()
		return p, f.Truncate(1 << 20)
	}
	var err error
	l.Console = filepath.Join(dir, l.Console)
	if l.ImageDisk != "" {
		if l.ImageDisk, err = disk(l.ImageDisk); err != nil {
			return l, err
		}
	}
	if l.RWDisk != "" {
		if l.RWDisk, err = disk(l.RWDisk); err != nil {
			return l, err
		}
	}
	l.Disks = slices.Clone(l.Disks)
	for i := range l.Disks {
		if l.Disks[i].Image, err = disk(l.Disks[i].Image); err != nil {
			return l, err
		}
	}
	l.Shares = slices.Clone(l.Shares)
	for i := range l.Shares {
		p := filepath.Join(dir, l.Shares[i].HostPath)
		if err := os.Mkdir(p, 0o755); err != nil {
			return l, err
		}
		l.Shares[i].HostPath = p
	}
	return l, nil
}

// restoring is a machine being restored from a template: what its qemu
// inherits besides the stream, and what the host tells it once it runs.
type restoring struct {
	dir      string
	qmpGuest *os.File
	qmp      net.Conn
	state    *os.File
	stateFD  int
	resume   wire.Resume
}

// restore turns l into a restore of the template in dir, its QMP socket
// and state file to be inherited from fd onwards (files, in order).
func (l *launch) restore(dir string, fd int) (*restoring, error) {
	state, err := os.Open(filepath.Join(dir, templateState))
	if err != nil {
		return nil, err
	}
	qmpGuest, qmpConn, err := qmpPair()
	if err != nil {
		state.Close()
		return nil, err
	}
	seed := make([]byte, 32)
	rand.Read(seed)
	r := &restoring{dir: dir, qmpGuest: qmpGuest, qmp: qmpConn, state: state, stateFD: fd + 1, resume: wire.Resume{Seed: seed}}
	if l.NIC != nil {
		r.resume.TemplateMAC = templateMAC
	}
	l.Template = true
	l.RAM = &ramFile{Path: filepath.Join(dir, templateRAM)}
	l.QMPFD = fd
	l.Incoming = true
	return r, nil
}

func (r *restoring) files() []*os.File { return []*os.File{r.qmpGuest, r.state} }

// run loads the template's state into m's qemu, which then runs the
// guest from where the template stopped, and sends its agent the Resume.
func (r *restoring) run(m *machine) error {
	r.qmp.SetDeadline(time.Now().Add(restoreWait))
	q, err := newQMP(r.qmp)
	if err != nil {
		return err
	}
	if err := q.ignoreShared(); err != nil {
		return err
	}
	if _, err := q.do("migrate-incoming", map[string]any{"uri": fmt.Sprintf("fd:%d", r.stateFD)}); err != nil {
		return err
	}
	if err := q.migrated(); err != nil {
		return err
	}
	r.resume.UnixNano = time.Now().UnixNano()
	return wire.WriteResume(m.conn, r.resume)
}

// close lets go of what qemu inherited, and of QMP: once the guest runs,
// nothing more is asked of it.
func (r *restoring) close() {
	r.qmpGuest.Close()
	r.qmp.Close()
	r.state.Close()
}

// restoreWait bounds a restore: it takes tens of milliseconds.
const restoreWait = 30 * time.Second

// qmpPair is a socket for qemu's QMP: the end it inherits and ours.
func qmpPair() (*os.File, net.Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	guest := os.NewFile(uintptr(fds[1]), "qmp")
	host := os.NewFile(uintptr(fds[0]), "qmp-host")
	conn, err := net.FileConn(host)
	host.Close()
	if err != nil {
		guest.Close()
		return nil, nil, err
	}
	return guest, conn, nil
}

func tailFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}

// qmp is a client of qemu's machine protocol, one command at a time.
type qmp struct {
	conn net.Conn
	r    *bufio.Reader
}

// newQMP reads the greeting and leaves capabilities negotiation mode.
func newQMP(conn net.Conn) (*qmp, error) {
	q := &qmp{conn: conn, r: bufio.NewReader(conn)}
	if _, err := q.r.ReadBytes('\n'); err != nil {
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	if _, err := q.do("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return q, nil
}

// ignoreShared leaves memory backed by a shared file out of migration:
// a template's memory is its file, so only device state is written. Both
// sides must say so.
func (q *qmp) ignoreShared() error {
	_, err := q.do("migrate-set-capabilities", map[string]any{
		"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": true}}})
	return err
}

// migrated waits for the migration under way, out or in, to end.
func (q *qmp) migrated() error {
	for {
		out, err := q.do("query-migrate", nil)
		if err != nil {
			return err
		}
		var st struct {
			Status string `json:"status"`
			Error  string `json:"error-desc"`
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return fmt.Errorf("query-migrate: %w", err)
		}
		switch st.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fmt.Errorf("migration %s: %s", st.Status, st.Error)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sendFD hands qemu f, under name, for commands that take "fd:name".
func (q *qmp) sendFD(name string, f *os.File) error {
	uc, ok := q.conn.(*net.UnixConn)
	if !ok {
		return errors.New("qmp getfd: not a unix socket")
	}
	b, _ := json.Marshal(map[string]any{"execute": "getfd", "arguments": map[string]any{"fdname": name}})
	if _, _, err := uc.WriteMsgUnix(append(b, '\n'), unix.UnixRights(int(f.Fd())), nil); err != nil {
		return fmt.Errorf("qmp getfd: %w", err)
	}
	_, err := q.reply("getfd")
	return err
}

// do runs cmd and returns its result; events on the way are skipped.
func (q *qmp) do(cmd string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	return q.reply(cmd)
}

// reply reads cmd's reply; events on the way are skipped.
func (q *qmp) reply(cmd string) (json.RawMessage, error) {
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		switch {
		case resp.Event != "":
			continue
		case resp.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
		}
		return resp.Return, nil
	}
}
