package httpfront

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/arcavm/arca/messages"
)

// platformParam reads the platform query parameter of create and pull and
// refuses what dockerd's parser (containerd/platforms.Parse) refuses, in
// its words. Beyond that parser, an os/arch pair must name a known
// operating system and architecture: dockerd would only fail later, with
// no image or manifest for it.
func platformParam(ctx *fasthttp.RequestCtx) (string, error) {
	v := string(ctx.QueryArgs().Peek("platform"))
	if v == "" {
		return "", nil
	}
	if err := checkPlatform(v); err != nil {
		return "", messages.InvalidParameter("%v", err)
	}
	return v, nil
}

var (
	platformComponent = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	platformOS        = regexp.MustCompile(`^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?$`)
)

func checkPlatform(s string) error {
	if strings.Contains(s, "*") {
		return fmt.Errorf("%q: wildcards not yet supported: invalid argument", s)
	}
	parts := strings.SplitN(s, "/", 4)
	m := platformOS.FindStringSubmatch(parts[0])
	if m == nil {
		return fmt.Errorf("%q is an invalid OS component of %q: OSAndVersion specifier component must match %q: invalid argument", parts[0], s, platformOS.String())
	}
	for _, p := range parts[1:] {
		if !platformComponent.MatchString(p) {
			return fmt.Errorf("%q is an invalid component of %q: platform specifier component must match %q: invalid argument", p, s, platformComponent.String())
		}
	}
	unknown := fmt.Errorf("%q: unknown operating system or architecture: invalid argument", s)
	os := strings.ToLower(m[1])
	if os == "macos" {
		os = "darwin"
	}
	switch len(parts) {
	case 1:
		if knownOS(os) || knownArch(normalizeArch(parts[0])) {
			return nil
		}
		return unknown
	case 2, 3:
		if knownOS(os) && knownArch(normalizeArch(parts[1])) {
			return nil
		}
		return unknown
	}
	return fmt.Errorf("%q: cannot parse platform specifier: invalid argument", s)
}

func knownOS(os string) bool {
	switch os {
	case "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos":
		return true
	}
	return false
}

func knownArch(arch string) bool {
	switch arch {
	case "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "ppc64", "ppc64le", "loong64", "mips", "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm":
		return true
	}
	return false
}

func normalizeArch(arch string) string {
	switch arch = strings.ToLower(arch); arch {
	case "i386":
		return "386"
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "armhf", "armel":
		return "arm"
	}
	return arch
}
