package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"go.yaml.in/yaml/v3"

	"github.com/runpod-workers/fwrelease/internal/layer"
	"github.com/runpod-workers/fwrelease/internal/manifest"
	"github.com/runpod-workers/fwrelease/internal/slimrule"
	"github.com/runpod-workers/fwrelease/internal/target"
)

// Load reads, decodes strictly and validates a config file. versionOverride,
// when non-empty, replaces the configured version (the --version flag).
// Every problem found is reported, each as "file:line: key: message".
func Load(path, versionOverride string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	c.Path, c.Dir = abs, filepath.Dir(abs)
	c.resolvePaths()
	if versionOverride != "" {
		if err := checkVersion(versionOverride); err != nil {
			return nil, fmt.Errorf("--version: %w", err)
		}
		c.Version = Version{Literal: versionOverride}
	}
	if c.Version.From != "" {
		v, err := ReadVersionFile(c.Version.From)
		if err != nil {
			return nil, fmt.Errorf("%s: version.from: %w", path, err)
		}
		c.Version.Literal = v
	}
	return c, nil
}

// Parse decodes and validates config bytes; name is used in messages.
// Relative paths are left as written.
func Parse(data []byte, name string) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			return nil, fmt.Errorf("%s:%s: %s", name, m[1], m[2])
		}
		return nil, fmt.Errorf("%s: %s", name, msg)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: the config is empty", name)
	}
	w := &walker{file: name, lines: map[string]int{}}
	w.walk(root.Content[0], reflect.TypeOf(Config{}), "")
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, w.explain(err)
	}
	c.setDefaults()
	if errs := c.validate(w); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

// walker checks every key against the struct it decodes into, before
// decoding, so that an unknown key is reported with its full path and line,
// and remembers where each key is for later messages.
type walker struct {
	file  string
	lines map[string]int // key path → line
	errs  []error
}

var versionType = reflect.TypeOf(Version{})

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if t == versionType {
		if n.Kind != yaml.MappingNode {
			return
		}
		t = reflect.TypeOf(struct {
			From string `yaml:"from"`
		}{})
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			ft, ok := fields[k.Value]
			if !ok {
				w.errs = append(w.errs, fmt.Errorf("%s:%d: unknown key %q%s", w.file, k.Line, p, suggest(k.Value, fields)))
				continue
			}
			w.lines[p] = v.Line
			w.walk(v, ft, p)
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			w.lines[p] = n.Content[i+1].Line
			w.walk(n.Content[i+1], t.Elem(), p)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			w.walk(item, t.Elem(), p)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = f.Type
		}
	}
	return out
}

// suggest names the known key closest to a misspelt one, if any is close.
func suggest(key string, fields map[string]reflect.Type) string {
	best, bestDist := "", 3
	for name := range fields {
		if d := editDistance(strings.ReplaceAll(key, "-", "_"), name); d < bestDist || (d == bestDist && name < best) {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// at is the "file:line" of a key path, or just the file when unknown.
func (w *walker) at(path string) string {
	if line, ok := w.lines[path]; ok {
		return fmt.Sprintf("%s:%d", w.file, line)
	}
	return w.file
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// explain rewrites the decoder's type errors as "file:line: key: message".
func (w *walker) explain(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %s", w.file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	byLine := map[int]string{}
	for p, l := range w.lines {
		if q, ok := byLine[l]; !ok || len(p) > len(q) { // the most specific key
			byLine[l] = p
		}
	}
	var errs []error
	for _, msg := range te.Errors {
		m := yamlLineRE.FindStringSubmatch(msg)
		if m == nil {
			errs = append(errs, fmt.Errorf("%s: %s", w.file, msg))
			continue
		}
		line, _ := strconv.Atoi(m[1])
		key := byLine[line]
		if key != "" {
			key += ": "
		}
		errs = append(errs, fmt.Errorf("%s:%d: %s%s", w.file, line, key, m[2]))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "flash-worker"
	}
	if c.Layout == "" {
		c.Layout = "overlay"
	}
	if c.Format == "" {
		c.Format = "tar.gz"
	}
	if len(c.Matrix.Accel) == 0 {
		c.Matrix.Accel = []string{"cpu"}
	}
	if len(c.Matrix.Arch) == 0 {
		c.Matrix.Arch = []string{"x86_64"}
	}
	if c.Deps.Manylinux == "" {
		c.Deps.Manylinux = "2_28"
	}
	if len(c.Layers) == 0 {
		c.Layers = layer.Defaults(c.Layout)
	}
}

var (
	nameRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	manylinuxRE = regexp.MustCompile(`^2_(1[7-9]|[2-9][0-9])$`)
	repoRE      = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
)

func checkVersion(v string) error {
	if !manifest.IsSemver(v) {
		return fmt.Errorf("version %q is not a semantic version such as 1.2.0 (no leading v)", v)
	}
	return nil
}

func (c *Config) validate(w *walker) []error {
	var errs []error
	bad := func(path string, err error) {
		errs = append(errs, fmt.Errorf("%s: %s: %w", w.at(path), path, err))
	}
	if !nameRE.MatchString(c.Name) {
		bad("name", fmt.Errorf("%q must be lower-case letters, digits, '.', '_' or '-'", c.Name))
	}
	switch {
	case c.Version.Literal == "" && c.Version.From == "":
		bad("version", errors.New("missing: give a literal such as \"1.2.0\" or {from: src/version.py}"))
	case c.Version.Literal != "":
		if err := checkVersion(c.Version.Literal); err != nil {
			bad("version", err)
		}
	}
	if c.SourceDateEpoch != nil && *c.SourceDateEpoch < 0 {
		bad("source_date_epoch", fmt.Errorf("%d is negative", *c.SourceDateEpoch))
	}
	if c.Source.Repository != "" && !repoRE.MatchString(c.Source.Repository) {
		bad("source.repository", fmt.Errorf("%q is not of the form owner/name", c.Source.Repository))
	}
	errs = append(errs, c.validateMatrix(bad)...)
	if c.Layout != "overlay" && c.Layout != "bundled" {
		bad("layout", fmt.Errorf("%q is not one of overlay, bundled", c.Layout))
	}
	if c.Bundled.Archive != "" && c.Layout != "bundled" {
		bad("bundled.archive", errors.New("only the bundled layout uses an interpreter archive"))
	}
	if c.Format != "tar.gz" && c.Format != "tar.zst" {
		bad("format", fmt.Errorf("%q is not one of tar.gz, tar.zst", c.Format))
	}
	if len(c.Files) == 0 {
		bad("files", errors.New("missing: list the worker's files, at least bootstrap.sh"))
	}
	for i, f := range c.Files {
		p := fmt.Sprintf("files[%d]", i)
		if f.Src == "" {
			bad(p+".src", errors.New("missing"))
		}
		if f.Dst != "" && (filepath.IsAbs(f.Dst) || hasDotDot(f.Dst)) {
			bad(p+".dst", fmt.Errorf("%q must be a relative path inside the tarball", f.Dst))
		}
		if f.Mode != "" {
			if m, err := strconv.ParseUint(f.Mode, 8, 32); err != nil || m&^0o777 != 0 {
				bad(p+".mode", fmt.Errorf("%q is not an octal permission such as \"0755\"", f.Mode))
			}
		}
	}
	for i, e := range c.ExtraFiles {
		c.validateExtra(fmt.Sprintf("extra_files[%d]", i), e, bad)
	}
	if n := nonEmpty(c.Deps.Requirements, c.Deps.Dir, c.Deps.Lock); n > 1 {
		bad("deps", errors.New("give one of deps.requirements, deps.lock or deps.dir"))
	}
	for acc, a := range c.Deps.Accel {
		if a.Requirements != "" && c.Deps.Lock != "" {
			bad("deps.accel."+acc+".requirements", errors.New("the lock decides every package; lock the accelerator's packages in uv.lock instead"))
		}
	}
	if !manylinuxRE.MatchString(c.Deps.Manylinux) {
		bad("deps.manylinux", fmt.Errorf("%q is not a glibc version such as \"2_28\" (2_17 or later)", c.Deps.Manylinux))
	}
	for acc := range c.Deps.Accel {
		if err := target.CheckAccel(acc); err != nil {
			bad("deps.accel."+acc, err)
		}
	}
	if b := c.SharedLibs.Base; b != "" && b != "none" && BaseImageLibs[b] == nil {
		bad("shared_libs.base", fmt.Errorf("%q is not one of %s, none", b, strings.Join(slices.Sorted(maps.Keys(BaseImageLibs)), ", ")))
	}
	for _, id := range c.Slim.Rules.Unknown() {
		bad("slim.rules."+string(id), fmt.Errorf("not a slimming rule; the rules are %s", ruleIDs()))
	}
	if m := c.SharedLibs.Missing; m != "" && m != "warn" && m != "fail" {
		bad("shared_libs.missing", fmt.Errorf("%q is not one of warn, fail", m))
	}
	if c.Sign.Key != "" && c.Sign.Keyless {
		bad("sign", errors.New("give either sign.key or sign.keyless, not both"))
	}
	c.validateLayers(bad)
	c.validateImages(bad)
	return errs
}

func (c *Config) validateLayers(bad func(string, error)) {
	seen := map[string]bool{}
	for i, l := range c.Layers {
		p := fmt.Sprintf("layers[%d]", i)
		if l.Name == "" {
			bad(p, errors.New("name: missing"))
		} else if !nameRE.MatchString(l.Name) {
			bad(p+".name", fmt.Errorf("%q must be lower-case letters, digits, '.', '_' or '-'", l.Name))
		}
		if seen[l.Name] {
			bad(p+".name", fmt.Errorf("%q names two layers", l.Name))
		}
		seen[l.Name] = true
		last := i == len(c.Layers)-1
		switch {
		case last && len(l.Paths) > 0:
			bad(p+".paths", errors.New("the last layer takes every path no other layer matches: give it no paths"))
		case !last && len(l.Paths) == 0:
			bad(p, errors.New("paths: missing: only the last layer takes the rest"))
		}
		for j, pat := range l.Paths {
			if err := layer.CheckPattern(pat); err != nil {
				bad(fmt.Sprintf("%s.paths[%d]", p, j), err)
			}
		}
	}
}

func (c *Config) validateImages(bad func(string, error)) {
	for acc, ref := range c.Images.Bases {
		p := "images.bases." + acc
		if err := target.CheckAccel(acc); err != nil {
			bad(p, err)
		}
		if _, err := name.ParseReference(strings.ReplaceAll(ref, "{python}", "3.11")); err != nil {
			bad(p, fmt.Errorf("%q is not an image reference such as python:{python}-slim@sha256:…: %v", ref, err))
		}
	}
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (c *Config) validateExtra(p string, e Extra, bad func(string, error)) {
	switch {
	case (e.URL == "") == (e.Path == ""):
		bad(p, errors.New("give either url or path"))
	case e.URL != "" && !strings.HasPrefix(e.URL, "https://") && !strings.HasPrefix(e.URL, "http://"):
		bad(p+".url", fmt.Errorf("%q is not an https:// URL", e.URL))
	}
	if len(e.SHA256) == 0 {
		bad(p+".sha256", errors.New("missing: the file's sha256, which the build checks (sha256sum FILE prints it)"))
	}
	for _, arch := range slices.Sorted(maps.Keys(e.SHA256)) {
		sum := e.SHA256[arch]
		key := p + ".sha256"
		if arch != "" {
			key += "." + arch
			if err := target.CheckArch(arch); err != nil {
				bad(key, err)
			}
		}
		if !sha256RE.MatchString(sum) {
			bad(key, fmt.Errorf("%q is not a sha256 (64 lower-case hex digits)", sum))
		}
	}
	if _, all := e.SHA256[""]; !all && len(e.SHA256) > 0 {
		for _, arch := range c.Matrix.Arch {
			if _, ok := e.SHA256[arch]; !ok {
				bad(p+".sha256", fmt.Errorf("no sha256 for arch %s", arch))
			}
		}
	}
	if e.Dst != "" && (filepath.IsAbs(e.Dst) || hasDotDot(e.Dst) || strings.HasSuffix(e.Dst, "/")) {
		bad(p+".dst", fmt.Errorf("%q must be a relative file path inside the tarball", e.Dst))
	}
	if e.Mode != "" {
		if m, err := strconv.ParseUint(e.Mode, 8, 32); err != nil || m&^0o777 != 0 {
			bad(p+".mode", fmt.Errorf("%q is not an octal permission such as \"0755\"", e.Mode))
		}
	}
}

func (c *Config) validateMatrix(bad func(string, error)) []error {
	if len(c.Matrix.Python) == 0 {
		bad("matrix.python", errors.New("missing: list the Python versions, e.g. [\"3.11\"]"))
	}
	checkAll := func(key string, values []string, check func(string) error) {
		seen := map[string]bool{}
		for i, v := range values {
			p := fmt.Sprintf("%s[%d]", key, i)
			if err := check(v); err != nil {
				bad(p, err)
			} else if seen[v] {
				bad(p, fmt.Errorf("%q is listed twice", v))
			}
			seen[v] = true
		}
	}
	checkAll("matrix.python", c.Matrix.Python, target.CheckPython)
	checkAll("matrix.accel", c.Matrix.Accel, target.CheckAccel)
	checkAll("matrix.arch", c.Matrix.Arch, target.CheckArch)
	for i, e := range c.Matrix.Exclude {
		p := fmt.Sprintf("matrix.exclude[%d]", i)
		if e == (target.Exclude{}) {
			bad(p, errors.New("empty exclude would remove every target"))
		}
		if e.Python != "" && !slices.Contains(c.Matrix.Python, e.Python) {
			bad(p+".python", fmt.Errorf("%q is not in matrix.python", e.Python))
		}
		if e.Accel != "" && !slices.Contains(c.Matrix.Accel, e.Accel) {
			bad(p+".accel", fmt.Errorf("%q is not in matrix.accel", e.Accel))
		}
		if e.Arch != "" && !slices.Contains(c.Matrix.Arch, e.Arch) {
			bad(p+".arch", fmt.Errorf("%q is not in matrix.arch", e.Arch))
		}
	}
	if len(c.Matrix.Python) > 0 && len(c.Targets()) == 0 {
		bad("matrix.exclude", errors.New("the excludes remove every target"))
	}
	return nil
}

func nonEmpty(values ...string) int {
	n := 0
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	return n
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(filepath.ToSlash(p), "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// resolvePaths makes every path in the config relative to its directory.
func (c *Config) resolvePaths() {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) && !strings.Contains(*p, "://") {
			*p = filepath.Join(c.Dir, *p)
		}
	}
	abs(&c.Version.From)
	abs(&c.Deps.Requirements)
	abs(&c.Deps.Lock)
	abs(&c.Deps.Dir)
	for i := range c.Deps.FindLinks {
		abs(&c.Deps.FindLinks[i])
	}
	for k, a := range c.Deps.Accel {
		abs(&a.Requirements)
		c.Deps.Accel[k] = a
	}
	for i := range c.ExtraFiles {
		abs(&c.ExtraFiles[i].Path)
	}
	abs(&c.Sign.Key)
	abs(&c.Bundled.Archive)
	if c.Publish.Local != nil {
		abs(&c.Publish.Local.Dir)
	}
}

// ruleIDs lists the slimming rules' IDs, for an error naming a wrong one.
func ruleIDs() string {
	ids := make([]string, len(slimrule.Rules))
	for i, r := range slimrule.Rules {
		ids[i] = string(r.ID)
	}
	return strings.Join(ids, ", ")
}
