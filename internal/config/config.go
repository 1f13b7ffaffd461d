// Package config reads and validates fwrelease.yaml (docs/config.md).
package config

import (
	"path"
	"strings"

	"github.com/runpod-workers/fwrelease/internal/layer"
	"github.com/runpod-workers/fwrelease/internal/slimrule"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// DefaultFile is the config looked for when --config is not given.
const DefaultFile = "fwrelease.yaml"

// Config is a decoded, validated fwrelease.yaml. Paths in it are already
// resolved against the config file's directory.
type Config struct {
	Name            string     `yaml:"name"`
	Version         Version    `yaml:"version"`
	SourceDateEpoch *int64     `yaml:"source_date_epoch"`
	Source          Source     `yaml:"source"`
	Matrix          Matrix     `yaml:"matrix"`
	Layout          string     `yaml:"layout"`
	Files           []File     `yaml:"files"`
	ExtraFiles      []Extra    `yaml:"extra_files"`
	Deps            Deps       `yaml:"deps"`
	Slim            Slim       `yaml:"slim"`
	SharedLibs      SharedLibs `yaml:"shared_libs"`
	Format          string     `yaml:"format"`
	Bundled         Bundled    `yaml:"bundled"`
	Sign            Sign       `yaml:"sign"`
	Publish         Publish    `yaml:"publish"`
	// Layers split each target's tree into image layers; empty until
	// defaulted (layer.Defaults of the layout).
	Layers []layer.Rule `yaml:"layers"`
	Images Images       `yaml:"images"`

	// Path is the config file, Dir its directory.
	Path string `yaml:"-"`
	Dir  string `yaml:"-"`
}

// Version is either a literal ("1.2.0") or read from a file: a
// pyproject.toml's [project] version, or a Python file that assigns
// __version__.
type Version struct {
	Literal string
	From    string
}

// Source names the repository the worker is built from. Commit and tag are
// found at build time.
type Source struct {
	Repository string `yaml:"repository"`
}

type Matrix struct {
	Python  []string         `yaml:"python"`
	Accel   []string         `yaml:"accel"`
	Arch    []string         `yaml:"arch"`
	Exclude []target.Exclude `yaml:"exclude"`
}

// File copies the files matched by Src (a glob, or a directory copied whole)
// to Dst under the tarball's top directory. A Dst ending in "/" is a directory.
// Optional lets Src name nothing (a src/tests directory some checkouts lack).
type File struct {
	Src      string `yaml:"src"`
	Dst      string `yaml:"dst"`
	Mode     string `yaml:"mode"`
	Optional bool   `yaml:"optional"`
}

// Extra is a file from outside the repository, pinned by its sha256: a
// download (url) or a local file (path), optionally an archive from which
// one member is taken (extract), such as the static uv binary the worker
// ships. "{arch}" in url, path and extract is replaced per target, and
// sha256 may give one digest per arch.
type Extra struct {
	URL     string  `yaml:"url"`
	Path    string  `yaml:"path"`
	SHA256  Digests `yaml:"sha256"`
	Extract string  `yaml:"extract"`
	Dst     string  `yaml:"dst"`
	Mode    string  `yaml:"mode"`
	// MaxSize bounds the download (default 1GiB): a source that sends
	// more is cut off before it fills the disk.
	MaxSize Size `yaml:"max_size"`
}

// Digests is one sha256 for every arch (written as a string, kept under
// the key "") or a map from arch to sha256.
type Digests map[string]string

// For returns the digest pinned for arch.
func (d Digests) For(arch string) string {
	if v, ok := d[arch]; ok {
		return v
	}
	return d[""]
}

// Resolve returns the entry's source (URL or path), archive member and
// destination for one arch.
func (e Extra) Resolve(arch string) (src, extract, dst string) {
	r := strings.NewReplacer("{arch}", arch)
	src = r.Replace(e.URL + e.Path)
	extract = r.Replace(e.Extract)
	dst = r.Replace(e.Dst)
	if dst == "" {
		dst = path.Base(extract)
		if extract == "" {
			dst = path.Base(src)
		}
	}
	return src, extract, dst
}

type Deps struct {
	Requirements   string               `yaml:"requirements"`
	Lock           string               `yaml:"lock"` // uv.lock: install exactly what it pins
	Dir            string               `yaml:"dir"`
	IndexURL       string               `yaml:"index_url"`
	ExtraIndexURLs []string             `yaml:"extra_index_urls"`
	FindLinks      []string             `yaml:"find_links"`
	NoIndex        bool                 `yaml:"no_index"`
	Manylinux      string               `yaml:"manylinux"`
	Accel          map[string]AccelDeps `yaml:"accel"`
}

// AccelDeps adds indexes and requirements for one accelerator, such as the
// PyTorch CUDA index for cu128.
type AccelDeps struct {
	ExtraIndexURLs []string `yaml:"extra_index_urls"`
	Requirements   string   `yaml:"requirements"`
}

// BaseImageLibs lists, per base image shared_libs.base can name, the shared libraries its
// packages install (python:3.X-slim is Debian slim plus CPython's runtime
// dependencies; pytorch/pytorch:*-runtime adds conda's and CUDA's). They
// are a floor, not a census: shared_libs.provided adds to them.
var BaseImageLibs = map[string][]string{
	"python-slim": {
		"libgcc_s.so.1", "libstdc++.so.6", "libz.so.1", "libssl.so.3", "libcrypto.so.3",
		"libffi.so.8", "libsqlite3.so.0", "libbz2.so.1.0", "liblzma.so.5", "libreadline.so.8",
		"libncursesw.so.6", "libtinfo.so.6", "libuuid.so.1", "libexpat.so.1", "libgdbm.so.6",
		"libgdbm_compat.so.4", "libtirpc.so.3", "libnsl.so.2", "libselinux.so.1", "libzstd.so.1",
		"libpython3.10.so.1.0", "libpython3.11.so.1.0", "libpython3.12.so.1.0", "libpython3.13.so.1.0",
	},
	"pytorch-runtime": {
		"libgcc_s.so.1", "libstdc++.so.6", "libgomp.so.1", "libz.so.1", "libssl.so.3", "libcrypto.so.3",
		"libffi.so.8", "libsqlite3.so.0", "libbz2.so.1.0", "liblzma.so.5", "libreadline.so.8",
		"libncursesw.so.6", "libtinfo.so.6", "libuuid.so.1", "libexpat.so.1", "libzstd.so.1",
		"libcuda.so.1", "libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12", "libcudnn.so.9",
		"libnccl.so.2", "libcufft.so.11", "libcurand.so.10", "libcusparse.so.12", "libcusolver.so.11",
		"libnvJitLink.so.12", "libnvrtc.so.12", "libnvToolsExt.so.1",
		"libtorch.so", "libtorch_cpu.so", "libtorch_cuda.so", "libtorch_python.so", "libc10.so", "libc10_cuda.so", "libshm.so",
		"libpython3.10.so.1.0", "libpython3.11.so.1.0", "libpython3.12.so.1.0", "libpython3.13.so.1.0",
	},
}

// BaseFor is the base image whose list applies to a target of accelerator
// accel: the one the config names, else python-slim for cpu and
// pytorch-runtime for CUDA.
func (s SharedLibs) BaseFor(accel string) string {
	switch {
	case s.Base != "":
		return s.Base
	case accel == "cpu":
		return "python-slim"
	}
	return "pytorch-runtime"
}

// SharedLibs says which shared libraries the base image provides, for the
// report of what the tarball's ELF objects need (DT_NEEDED) but neither the
// tarball nor the base image has.
type SharedLibs struct {
	// Base names a known base image's list: python-slim (python:3.X-slim,
	// the default for cpu) or pytorch-runtime (pytorch/pytorch:*-runtime,
	// the default for CUDA accelerators); "none" for no list.
	Base string `yaml:"base"`
	// Provided adds libraries (file names such as libyaml-0.so.2) the base
	// image has.
	Provided []string `yaml:"provided"`
	// Missing is what a library found nowhere does: "warn" (the default)
	// logs it, "fail" fails the build.
	Missing string `yaml:"missing"`
}

type Slim struct {
	Enabled         *bool    `yaml:"enabled"`
	ExcludePackages []string `yaml:"exclude_packages"`
	Keep            []string `yaml:"keep"`
	MaxSize         Size     `yaml:"max_size"`
	// MaxUnpackedSize bounds the dependencies' bytes on disk before
	// slimming (default: 8 × max_size, else 8GiB).
	MaxUnpackedSize Size              `yaml:"max_unpacked_size"`
	Rules           slimrule.Switches `yaml:"rules"` // checked against slimrule.Rules
}

// On reports whether slimming is enabled (the default).
func (s Slim) On() bool { return s.Enabled == nil || *s.Enabled }

// Bundled says where the bundled layout's interpreter comes from: a
// python-build-standalone install_only archive, {python} and {arch} filled
// in per target; without one, `uv python install`.
type Bundled struct {
	Archive string `yaml:"archive"`
}

type Sign struct {
	Key       string `yaml:"key"`
	Keyless   bool   `yaml:"keyless"`
	FulcioURL string `yaml:"fulcio_url"` // keyless; default: public-good Sigstore
	RekorURL  string `yaml:"rekor_url"`
}

// Images configures the OCI images made from the layers. Bases, keyed by
// accelerator, are the images an overlay image is made on ("{python}" is
// the target's version); the mount image needs none.
type Images struct {
	Bases map[string]string `yaml:"bases"`
}

type Publish struct {
	Local  *Local  `yaml:"local"`
	S3     *S3     `yaml:"s3"`
	GitHub *GitHub `yaml:"github"`
	OCI    *OCI    `yaml:"oci"`
}

type Local struct {
	Dir string `yaml:"dir"`
}

type S3 struct {
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`
	Region    string `yaml:"region"`
	Endpoint  string `yaml:"endpoint"`
	PathStyle bool   `yaml:"path_style"`
	PublicURL string `yaml:"public_url"` // where consumers download from (a CDN); default: the bucket's URL
}

type GitHub struct {
	Owner     string `yaml:"owner"`
	Repo      string `yaml:"repo"`
	APIURL    string `yaml:"api_url"`
	UploadURL string `yaml:"upload_url"`
}

type OCI struct {
	Repository string `yaml:"repository"`
	PlainHTTP  bool   `yaml:"plain_http"`
}

// Targets expands the matrix.
func (c *Config) Targets() []target.Target {
	return target.Expand(c.Matrix.Python, c.Matrix.Accel, c.Matrix.Arch, c.Matrix.Exclude)
}

// Extension is the tarball's file extension for the configured format.
func (c *Config) Extension() string { return "." + c.Format }
