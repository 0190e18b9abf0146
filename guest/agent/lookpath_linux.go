package agent

import (
	"errors"
	"path"
	"strings"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// defaultPath is searched when the process has no PATH, as runc does.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath finds the executable for name inside the root the way Go's
// exec.LookPath (used by runc) does, and fails with the same words, which
// Docker clients match on: `exec: "x": executable file not found in $PATH`,
// `exec: "/x": stat /x: no such file or directory`, `permission denied`.
// Relative names resolve against cwd, a path inside the root.
func lookPath(r *rootDir, name, pathEnv, cwd string) (string, error) {
	if name == "" {
		return "", wire.Errorf(wire.KindNotFound, `exec: "": executable file not found in $PATH`)
	}
	if strings.Contains(name, "/") {
		err := r.checkExecutable(inCwd(cwd, name))
		switch {
		case err == nil:
			return name, nil
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
			return "", wire.Errorf(wire.KindNotFound, "exec: %q: stat %s: no such file or directory", name, name)
		case errors.Is(err, unix.EISDIR):
			return "", wire.Errorf(wire.KindPermission, "exec: %q: is a directory: permission denied", name)
		case errors.Is(err, unix.EACCES):
			return "", wire.Errorf(wire.KindPermission, "exec: %q: permission denied", name)
		}
		return "", wire.Errorf(wire.KindNotFound, "exec: %q: %v", name, err)
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		candidate := path.Join(dir, name)
		if !path.IsAbs(candidate) {
			// Keep it relative, as the process sees it after chdir.
			candidate = "./" + candidate
		}
		if r.checkExecutable(inCwd(cwd, candidate)) == nil {
			return candidate, nil
		}
	}
	return "", wire.Errorf(wire.KindNotFound, "exec: %q: executable file not found in $PATH", name)
}

// checkExecutable accepts a non-directory with any execute bit; whether
// this user may run it is for execve to say.
func (r *rootDir) checkExecutable(name string) error {
	st, err := r.stat(name)
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.EISDIR
	}
	if st.Mode&0o111 == 0 {
		return unix.EACCES
	}
	return nil
}

func inCwd(cwd, name string) string {
	if path.IsAbs(name) {
		return name
	}
	return path.Join("/", cwd, name)
}
