package build

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/config"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// An extension module that needs a system library the base image lacks
// (libyaml-0.so.2 for yaml's C extension as Debian builds it) packs
// silently and fails at import in production. The report finds such
// libraries before the release: every DT_NEEDED entry of every ELF object
// in the tarball, unless the tarball itself has a file or soname of that
// name, or the base image's list holds it.

// glibcLibs are in every glibc base image.
var glibcLibs = []string{
	"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
	"libresolv.so.2", "libcrypt.so.1", "libanl.so.1", "libnss_files.so.2", "libnss_dns.so.2",
	"ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1", "linux-vdso.so.1",
}

// MissingLib is a library some ELF objects in the tarball need but nothing
// provides.
type MissingLib struct {
	Name      string
	NeededBy  []string // paths inside the tarball
	BaseImage string
}

// missingLibs walks root and returns the libraries needed but found
// neither in the tree nor in the base image's list.
func missingLibs(root string, c config.SharedLibs, t target.Target) ([]MissingLib, error) {
	base := c.BaseFor(t.Accel)
	have := map[string]bool{}
	for _, l := range slices.Concat(glibcLibs, config.BaseImageLibs[base], c.Provided) {
		have[l] = true
	}
	needs := map[string][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		have[d.Name()] = true // a file or link of that name in the tree
		if !d.Type().IsRegular() || !loadable(d) {
			return nil
		}
		f, err := elf.Open(p)
		if err != nil {
			return nil // not an ELF object
		}
		defer f.Close()
		if sonames, _ := f.DynString(elf.DT_SONAME); len(sonames) > 0 {
			have[sonames[0]] = true
		}
		libs, _ := f.ImportedLibraries()
		rel, _ := filepath.Rel(root, p)
		for _, l := range libs {
			needs[l] = append(needs[l], filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading ELF objects in %s: %w", root, err)
	}
	var out []MissingLib
	for lib, by := range needs {
		if !have[lib] {
			sort.Strings(by)
			out = append(out, MissingLib{Name: lib, NeededBy: by, BaseImage: base})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// loadable says whether a file can be an ELF object anything loads: a
// shared library or extension module (".so" in its name: the loader finds
// DT_NEEDED libraries, and Python extension modules, by such names) or an
// executable. The rest (most of a tree) is not opened.
func loadable(d fs.DirEntry) bool {
	if isSharedObjectName(d.Name()) {
		return true
	}
	info, err := d.Info()
	return err == nil && info.Mode()&0o111 != 0
}

// checkSharedLibs logs each missing library, or fails with all of them
// when shared_libs.missing is "fail".
func (b *Builder) checkSharedLibs(t target.Target, root string) error {
	c := b.Config.SharedLibs
	missing, err := missingLibs(root, c, t)
	if err != nil || len(missing) == 0 {
		return err
	}
	var lines []string
	for _, m := range missing {
		b.Log.Warn("shared library in neither the tarball nor the base image", "target", t.ID(), "library", m.Name, "base_image", m.BaseImage, "needed_by", strings.Join(m.NeededBy, " "))
		lines = append(lines, fmt.Sprintf("  %s, needed by %s", m.Name, strings.Join(m.NeededBy, ", ")))
	}
	if c.Missing != "fail" {
		return nil
	}
	return fmt.Errorf("%d shared libraries are in neither the tarball nor the %s base image:\n%s\nship them in the tarball, choose wheels that bundle them (manylinux wheels do), or list them in shared_libs.provided if the base image has them",
		len(missing), missing[0].BaseImage, strings.Join(lines, "\n"))
}
