package agent

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/arcavm/arca/guest/wire"
)

// execUser is who a process runs as, resolved the way Docker (runc) does
// it from the container's own /etc/passwd and /etc/group.
type execUser struct {
	UID, GID uint32
	// Groups is what setgroups gets: the primary group first, then the
	// user's supplementary groups, as Docker sets them.
	Groups []uint32
	Home   string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// resolveUser turns a Docker user string ("", "uid", "name", "uid:gid",
// "name:group", ...) into ids. passwd and group may be nil when the image
// has no such file.
func resolveUser(spec string, passwd, group io.Reader) (execUser, error) {
	u, err := lookupExecUser(spec, passwd, group)
	if err != nil {
		return u, err
	}
	groups := []uint32{u.GID}
	for _, g := range u.Groups {
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	u.Groups = groups
	return u, nil
}

// lookupExecUser resolves as runc does; Groups are only the supplementary ones.
func lookupExecUser(spec string, passwd, group io.Reader) (execUser, error) {
	u := execUser{Home: "/"}
	userArg, groupArg, _ := strings.Cut(spec, ":")
	users, err := parsePasswd(passwd)
	if err != nil {
		return u, err
	}
	// The default user is root, taking its home from passwd if listed.
	if userArg == "" {
		userArg = "0"
	}
	uid, uidErr := parseID(userArg)
	matched := ""
	found := false
	for _, e := range users {
		if (uidErr == nil && e.uid == uid) || (uidErr != nil && e.name == userArg) {
			u.UID, u.GID, u.Home, matched, found = e.uid, e.gid, e.home, e.name, true
			break
		}
	}
	if !found {
		if uidErr != nil {
			return u, wire.Errorf(wire.KindInvalid, "unable to find user %s: no matching entries in passwd file", userArg)
		}
		u.UID = uid
	}
	if u.Home == "" {
		u.Home = "/"
	}
	if groupArg == "" && matched == "" {
		return u, nil
	}
	groups, err := parseGroup(group)
	if err != nil {
		return u, err
	}
	if groupArg != "" {
		// An explicit group replaces the primary one; supplementary
		// groups are then not looked up, as in runc.
		if gid, err := parseID(groupArg); err == nil {
			u.GID = gid
			return u, nil
		}
		for _, g := range groups {
			if g.name == groupArg {
				u.GID = g.gid
				return u, nil
			}
		}
		return u, wire.Errorf(wire.KindInvalid, "unable to find group %s: no matching entries in group file", groupArg)
	}
	for _, g := range groups {
		for _, m := range g.members {
			if m == matched {
				u.Groups = append(u.Groups, g.gid)
				break
			}
		}
	}
	return u, nil
}

// parseID accepts a decimal id in the range runc accepts.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > math.MaxInt32 {
		return 0, fmt.Errorf("invalid id %q", s)
	}
	return uint32(n), nil
}

// parsePasswd reads name:password:uid:gid:gecos:home:shell lines, skipping
// comments and lines it cannot read, as libc does.
func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := eachLine(r, func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	})
	if err != nil {
		return nil, fmt.Errorf("read passwd file: %w", err)
	}
	return out, nil
}

// parseGroup reads name:password:gid:member,member lines.
func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := eachLine(r, func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := parseID(f[2])
		if err != nil {
			return
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	})
	if err != nil {
		return nil, fmt.Errorf("read group file: %w", err)
	}
	return out, nil
}

func eachLine(r io.Reader, fn func(fields []string)) error {
	if r == nil {
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	return sc.Err()
}

// processEnv is the environment exactly as given, plus HOME when absent and
// TERM=xterm for a tty when absent, as Docker sets them.
func processEnv(env []string, home string, tty bool) []string {
	out := append([]string(nil), env...)
	if _, ok := lookupEnv(env, "HOME"); !ok {
		out = append(out, "HOME="+home)
	}
	if _, ok := lookupEnv(env, "TERM"); tty && !ok {
		out = append(out, "TERM=xterm")
	}
	return out
}

// lookupEnv returns the first value of key, as getenv(3) does.
func lookupEnv(env []string, key string) (string, bool) {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
