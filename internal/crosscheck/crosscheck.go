// Package crosscheck type-checks Go packages as another platform builds
// them, without that platform's toolchain: the macOS files (the vz driver
// and what uses it) cannot be compiled on Linux because they need cgo and
// Apple's frameworks, but go/types can check them when cgo is faked. CI on
// Linux thus catches a wrong call into github.com/Code-Hex/vz/v3 or a
// Linux-only API in a file macOS builds, with its position.
package crosscheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Checker type-checks packages for one GOOS/GOARCH with cgo on. Every
// package, the standard library's too, is checked from source under that
// platform's build constraints; "C" is faked (go/types' FakeImportC), so a
// cgo call's C side is not checked, only the Go around it. Dependencies
// are checked without function bodies unless Bodies says. Not safe for concurrent use.
type Checker struct {
	ctx  build.Context
	fset *token.FileSet
	goTool,
	moduleDir string
	dirs    map[string]string // import path -> source directory
	pkgs    map[string]*types.Package
	missing map[string]error // imports that could not be checked at all
	depErrs []error          // errors found in dependencies

	// Bodies says which dependencies get their function bodies checked
	// too (e.g. the module's own packages); nil: none.
	Bodies func(importPath string) bool
}

// New makes a checker for goos/goarch; moduleDir is where `go list` runs
// (the module whose dependencies are resolved); goTool the go command.
func New(goos, goarch, moduleDir, goTool string) *Checker {
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH = goos, goarch
	ctx.CgoEnabled = true
	ctx.Dir = moduleDir
	return &Checker{
		ctx: ctx, fset: token.NewFileSet(), goTool: goTool, moduleDir: moduleDir,
		dirs: map[string]string{}, pkgs: map[string]*types.Package{}, missing: map[string]error{},
	}
}

// env is the go command's environment for the checker's platform.
func (c *Checker) env() []string {
	return append(os.Environ(), "GOOS="+c.ctx.GOOS, "GOARCH="+c.ctx.GOARCH, "CGO_ENABLED=1", "GOFLAGS=-mod=mod")
}

// Load finds the directories of patterns and of everything they import,
// as the target platform's build sees them, with one `go list -deps`.
func (c *Checker) Load(patterns ...string) error {
	args := append([]string{"list", "-e", "-deps", "-json=ImportPath,Dir"}, patterns...)
	cmd := exec.Command(c.goTool, args...)
	cmd.Dir, cmd.Env = c.moduleDir, c.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list %s: %w: %s", strings.Join(patterns, " "), err, strings.TrimSpace(stderr.String()))
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct{ ImportPath, Dir string }
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("go list: %w", err)
		}
		if p.Dir != "" {
			c.dirs[p.ImportPath] = p.Dir
		}
	}
}

// dir finds an import path's directory: from Load, else by asking
// `go list -find` (which resolves the one package, not its imports).
func (c *Checker) dir(path string) (string, error) {
	if d, ok := c.dirs[path]; ok {
		return d, nil
	}
	// The standard library vendors some packages under vendor/.
	if d, ok := c.dirs["vendor/"+path]; ok {
		return d, nil
	}
	cmd := exec.Command(c.goTool, "list", "-find", "-f", "{{.Dir}}", path)
	cmd.Dir, cmd.Env = c.moduleDir, c.env()
	out, err := cmd.Output()
	d := strings.TrimSpace(string(out))
	if err != nil || d == "" {
		return "", fmt.Errorf("cannot find package %q for %s/%s", path, c.ctx.GOOS, c.ctx.GOARCH)
	}
	c.dirs[path] = d
	return d, nil
}

// Import implements types.Importer.
func (c *Checker) Import(path string) (*types.Package, error) {
	return c.ImportFrom(path, "", 0)
}

// ImportFrom implements types.ImporterFrom: dependencies are checked
// once each.
func (c *Checker) ImportFrom(path, _ string, _ types.ImportMode) (*types.Package, error) {
	if path == "unsafe" {
		return types.Unsafe, nil
	}
	if p, ok := c.pkgs[path]; ok {
		return p, nil
	}
	if err, ok := c.missing[path]; ok {
		return nil, err
	}
	dir, err := c.dir(path)
	if err != nil {
		c.missing[path] = err
		return nil, err
	}
	pkg, errs := c.check(path, dir, c.Bodies == nil || !c.Bodies(path), false)
	c.depErrs = append(c.depErrs, errs...)
	if pkg == nil {
		err := fmt.Errorf("%s: %w", path, errors.Join(errs...))
		c.missing[path] = err
		return nil, err
	}
	c.pkgs[path] = pkg
	return pkg, nil
}

// DependencyErrors are the errors found so far in the packages the checked
// ones import (their declarations: bodies are not checked).
func (c *Checker) DependencyErrors() []error { return c.depErrs }

// CheckDir type-checks the package in dir, bodies included, as the
// checker's platform builds it (its build constraints pick the files),
// and returns every error, each with its position.
func (c *Checker) CheckDir(importPath, dir string) []error {
	_, errs := c.check(importPath, dir, false, false)
	return errs
}

// CheckTests is CheckDir with the package's tests: its own _test.go files
// and an external p_test package if it has one, as `go test` on that
// platform compiles them.
func (c *Checker) CheckTests(importPath, dir string) []error {
	_, errs := c.check(importPath, dir, false, true)
	bp, err := c.ctx.ImportDir(dir, 0)
	if err == nil && len(bp.XTestGoFiles) > 0 {
		_, xerrs := c.checkFiles(importPath+"_test", dir, bp.XTestGoFiles, false)
		errs = append(errs, xerrs...)
	}
	return errs
}

func (c *Checker) check(path, dir string, skipBodies, tests bool) (*types.Package, []error) {
	bp, err := c.ctx.ImportDir(dir, 0)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", dir, err)}
	}
	names := append(append([]string{}, bp.GoFiles...), bp.CgoFiles...)
	if tests {
		names = append(names, bp.TestGoFiles...)
	}
	return c.checkFiles(path, dir, names, skipBodies)
}

func (c *Checker) checkFiles(path, dir string, names []string, skipBodies bool) (*types.Package, []error) {
	sort.Strings(names)
	var files []*ast.File
	for _, n := range names {
		f, err := parser.ParseFile(c.fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, []error{err}
		}
		files = append(files, f)
	}
	var errs []error
	conf := types.Config{
		Importer:         c,
		FakeImportC:      true,
		IgnoreFuncBodies: skipBodies,
		Sizes:            types.SizesFor("gc", c.ctx.GOARCH),
		Error:            func(err error) { errs = append(errs, err) },
	}
	pkg, _ := conf.Check(path, c.fset, files, nil)
	return pkg, errs
}
