package inject

import (
	"errors"
	"strings"
	"testing"

	"github.com/runpod-workers/fwrelease/internal/manifest"
)

func artifact() *manifest.Artifact {
	return &manifest.Artifact{
		Target:          manifest.Target{ID: "py3.11-cpu-linux-x86_64", Python: "3.11", Accel: "cpu", OS: "linux", Arch: "x86_64"},
		File:            "flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz",
		Format:          "tar+gzip",
		StripComponents: 1,
		Size:            5381205,
		SHA256:          strings.Repeat("ab", 32),
		URLs: []string{
			"file:///dist/local/v1.2.0/flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz",
			"https://releases.example.com/v1.2.0/flash-worker-v1.2.0-py3.11-linux-x86_64.tar.gz?X-Amz-Signature=ab%2Fcd&x=1",
		},
	}
}

func TestScriptTakesOnlyHTTPSURLs(t *testing.T) {
	s, err := Script("1.2.0", artifact(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "file://") || !strings.Contains(s, `"https://releases.example.com/`) {
		t.Errorf("the script should download from the https URL only:\n%s", s)
	}
	for _, want := range []string{"D=" + DefaultFWDir, "C=" + DefaultCacheDir, "P=https ", "one " + strings.Repeat("ab", 32) + " 5381205 61 " + strings.Repeat("ab", 32) + ".tar.gz - 0 \"https://releases.example.com/", "for p in 1;", "tail -n +4 ", "--strip-components=1 ", "gzip -dc 2>/dev/null\n", "tar -xf - ", `-name "` + strings.Repeat("?", 64) + `.tar.gz" ! -name "*[!0-9a-f]*.tar.gz" \) -printf`} {
		if !strings.Contains(s, want) {
			t.Errorf("the script lacks %q", want)
		}
	}
	if strings.Contains(s, "'") {
		t.Errorf("the script holds a single quote, so dockerArgs would need escapes")
	}
}

// With the manifest's diff_id and tar_size, the tarball's uncompressed
// stream is kept on the volume too, and prune knows both kinds of file.
func TestScriptTarCopy(t *testing.T) {
	a := artifact()
	a.DiffID, a.TarSize = "sha256:"+strings.Repeat("a1", 32), 18577560
	s, err := Script("1.2.0", a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"one " + strings.Repeat("ab", 32) + " 5381205 61 " + strings.Repeat("ab", 32) + ".tar.gz " + strings.Repeat("a1", 32) + ".tar 18577560 \"https://",
		"tail -n +5 ",
		`-name "` + strings.Repeat("?", 64) + `.tar.gz" ! -name "*[!0-9a-f]*.tar.gz" -o -name "` + strings.Repeat("?", 64) + `.tar" ! -name "*[!0-9a-f]*.tar" \)`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the script lacks %q:\n%s", want, s)
		}
	}
}

func TestScriptZstd(t *testing.T) {
	a := artifact()
	a.Format = "tar+zstd"
	s, err := Script("1.2.0", a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, strings.Repeat("ab", 32)+".tar.zst - 0 ") || !strings.Contains(s, "zstd -dc 2>/dev/null\n") || !strings.Contains(s, " zstd find ") {
		t.Errorf("a zstd artifact's script caches and unpacks as zstd:\n%s", s)
	}
}

func TestScriptRefusesUnsafeValues(t *testing.T) {
	tests := []struct {
		name    string
		version string
		change  func(*manifest.Artifact, *Options)
		want    string
	}{
		{"path in version", "1.2.0/../../../x", nil, "not a semantic version"},
		{"v prefix", "v1.2.0", nil, "not a semantic version"},
		{"plain http", "1.2.0", func(_ *manifest.Artifact, o *Options) { o.URLs = []string{"http://127.0.0.1:8080/x.tar.gz"} }, "plain http"},
		{"plain http elsewhere, even insecure", "1.2.0", func(_ *manifest.Artifact, o *Options) {
			o.URLs, o.AllowInsecure = []string{"http://10.1.2.3/x.tar.gz"}, true
		}, "loopback only"},
		{"option as URL", "1.2.0", func(_ *manifest.Artifact, o *Options) { o.URLs = []string{"-K/etc/passwd"} }, "leading -"},
		{"quote in URL", "1.2.0", func(_ *manifest.Artifact, o *Options) { o.URLs = []string{"https://x/a'b"} }, "cannot be put"},
		{"command in URL", "1.2.0", func(_ *manifest.Artifact, o *Options) { o.URLs = []string{"https://x/$(reboot)"} }, "cannot be put"},
		{"glob in URL", "1.2.0", func(_ *manifest.Artifact, o *Options) { o.URLs = []string{"https://x/*"} }, "cannot be put"},
		{"ftp", "1.2.0", func(_ *manifest.Artifact, o *Options) { o.URLs = []string{"ftp://x/a"} }, "want an https"},
		{"file only", "1.2.0", func(a *manifest.Artifact, _ *Options) { a.URLs = a.URLs[:1] }, "no usable URL"},
		{"relative fw-dir", "1.2.0", func(_ *manifest.Artifact, o *Options) { o.FWDir = "opt/fw" }, "--fw-dir"},
		{"fw-dir at the root", "1.2.0", func(_ *manifest.Artifact, o *Options) { o.FWDir = "/fw" }, "--fw-dir"},
		{"dotdot cache-dir", "1.2.0", func(_ *manifest.Artifact, o *Options) { o.CacheDir = "/runpod-volume/../etc" }, "--cache-dir"},
		{"space in cache-dir", "1.2.0", func(_ *manifest.Artifact, o *Options) { o.CacheDir = "/runpod volume/c" }, "--cache-dir"},
		{"short sha256", "1.2.0", func(a *manifest.Artifact, _ *Options) { a.SHA256 = "abc" }, "64 lower-case hex"},
		{"strip 2", "1.2.0", func(a *manifest.Artifact, _ *Options) { a.StripComponents = 2 }, "strip_components"},
		{"zip", "1.2.0", func(a *manifest.Artifact, _ *Options) { a.Format = "zip" }, "format"},
		{"no size", "1.2.0", func(a *manifest.Artifact, _ *Options) { a.Size = 0 }, "size 0"},
		{"diff_id without sha256:", "1.2.0", func(a *manifest.Artifact, _ *Options) { a.DiffID, a.TarSize = strings.Repeat("ab", 32), 10240 }, "diff_id"},
		{"diff_id without tar_size", "1.2.0", func(a *manifest.Artifact, _ *Options) { a.DiffID = "sha256:" + strings.Repeat("ab", 32) }, "tar_size 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, o := artifact(), Options{}
			if tt.change != nil {
				tt.change(a, &o)
			}
			_, err := Script(tt.version, a, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if !errors.Is(err, ErrBadValue) && !errors.Is(err, ErrNoURL) {
				t.Errorf("err = %v is neither ErrBadValue nor ErrNoURL", err)
			}
		})
	}
}

// layered is artifact() with two layers, each at two URLs of which only the
// https one is usable by a container.
func layered() *manifest.Artifact {
	a := artifact()
	for _, l := range []struct {
		name, hex, diff string
		size, tarSize   int64
	}{{"deps", strings.Repeat("cd", 32), strings.Repeat("c1", 32), 9 << 20, 30 << 20}, {"worker", strings.Repeat("ef", 32), strings.Repeat("e1", 32), 4096, 10240}} {
		a.Layers = append(a.Layers, manifest.Layer{Name: l.name, Digest: "sha256:" + l.hex, Size: l.size, DiffID: "sha256:" + l.diff, TarSize: l.tarSize, URLs: []string{
			"file:///dist/local/v1.2.0/layers/" + l.hex + ".tar.gz",
			"https://releases.example.com/v1.2.0/layers/" + l.hex + ".tar.gz",
		}})
	}
	return a
}

// A layered script fetches each layer, in order, by its digest and size
// from its own URLs, keeps it on the volume uncompressed by its diff ID and
// size, unpacks it with strip 0 (a layer holds the tree at its root), keeps
// the artifact's sha256 as the restart marker, and prunes beyond this
// release's layers and two more.
func TestScriptLayers(t *testing.T) {
	s, err := Script("1.2.0", layered(), Options{Layers: true})
	if err != nil {
		t.Fatal(err)
	}
	deps := "one " + strings.Repeat("cd", 32) + " 9437184 92 " + "- " + strings.Repeat("c1", 32) + ".tar 31457280 \"https://releases.example.com/v1.2.0/layers/" + strings.Repeat("cd", 32) + ".tar.gz\" || return 1\n"
	worker := "one " + strings.Repeat("ef", 32) + " 4096 20 " + "- " + strings.Repeat("e1", 32) + ".tar 10240 \"https://releases.example.com/v1.2.0/layers/" + strings.Repeat("ef", 32) + ".tar.gz\" || return 1\n"
	for _, want := range []string{" H=" + strings.Repeat("ab", 32) + " ", deps + "  " + worker, "--strip-components=0 ", "tar -xf - ", "gzip -dc ", "tail -n +5 ", `-name "` + strings.Repeat("?", 64) + `.tar" ! -name "*[!0-9a-f]*.tar" \) -printf`, " layers=2 cached=$c"} {
		if !strings.Contains(s, want) {
			t.Errorf("the layered script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "file://") || strings.Contains(s, "'") || strings.Contains(s, "flash-worker-v1.2.0-py3.11") {
		t.Errorf("the layered script holds a file URL, a single quote, or the tarball's URL:\n%s", s)
	}
	// A zstd tarball's layers are gzip still.
	a := layered()
	a.Format = "tar+zstd"
	if s, err := Script("1.2.0", a, Options{Layers: true}); err != nil || !strings.Contains(s, "gzip -dc ") || strings.Contains(s, "zst") {
		t.Errorf("a zstd artifact's layers must be cached and unpacked as gzip: %v\n%s", err, s)
	}
	// The tarball's script does not change when the manifest lists layers.
	plain, _ := Script("1.2.0", artifact(), Options{})
	if s, _ := Script("1.2.0", layered(), Options{}); s != plain {
		t.Errorf("layers in the manifest changed the tarball's script")
	}
}

func TestScriptRefusesBadLayers(t *testing.T) {
	tests := []struct {
		name   string
		change func(*manifest.Artifact, *Options)
		want   string
	}{
		{"no layers", func(a *manifest.Artifact, _ *Options) { a.Layers = nil }, "lists no layers"},
		{"digest without algorithm", func(a *manifest.Artifact, _ *Options) { a.Layers[1].Digest = strings.Repeat("ef", 32) }, `layer "worker": digest`},
		{"sha512 digest", func(a *manifest.Artifact, _ *Options) { a.Layers[0].Digest = "sha512:" + strings.Repeat("cd", 32) }, `layer "deps": digest`},
		{"short digest", func(a *manifest.Artifact, _ *Options) { a.Layers[0].Digest = "sha256:abc" }, `layer "deps": digest`},
		{"upper-case digest", func(a *manifest.Artifact, _ *Options) { a.Layers[0].Digest = "sha256:" + strings.Repeat("CD", 32) }, `layer "deps": digest`},
		{"shell in digest", func(a *manifest.Artifact, _ *Options) {
			a.Layers[0].Digest = "sha256:$(reboot)" + strings.Repeat("c", 55)
		}, `layer "deps": digest`},
		{"size 0", func(a *manifest.Artifact, _ *Options) { a.Layers[1].Size = 0 }, `layer "worker": size 0`},
		{"negative size", func(a *manifest.Artifact, _ *Options) { a.Layers[0].Size = -1 }, `layer "deps": size -1`},
		{"no diff ID", func(a *manifest.Artifact, _ *Options) { a.Layers[1].DiffID = "" }, `layer "worker": diff_id ""`},
		{"shell in diff ID", func(a *manifest.Artifact, _ *Options) {
			a.Layers[0].DiffID = "sha256:$(reboot)" + strings.Repeat("c", 55)
		}, `layer "deps": diff_id`},
		{"no tar size", func(a *manifest.Artifact, _ *Options) { a.Layers[0].TarSize = 0 }, `layer "deps": diff_id`},
		{"file URLs only", func(a *manifest.Artifact, _ *Options) { a.Layers[1].URLs = a.Layers[1].URLs[:1] }, `layer "worker": no usable URL`},
		{"no URLs", func(a *manifest.Artifact, _ *Options) { a.Layers[0].URLs = nil }, `layer "deps": no usable URL`},
		{"plain http", func(a *manifest.Artifact, _ *Options) { a.Layers[0].URLs = []string{"http://127.0.0.1:1/x.tar.gz"} }, `layer "deps": no usable URL`},
		{"quote in URL", func(a *manifest.Artifact, _ *Options) { a.Layers[0].URLs = []string{"https://x/a\"b"} }, `layer "deps": no usable URL`},
		{"tarball --url", func(_ *manifest.Artifact, o *Options) { o.URLs = []string{"https://x/a.tar.gz"} }, "does not apply to its layers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, o := layered(), Options{Layers: true}
			tt.change(a, &o)
			_, err := Script("1.2.0", a, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "target py3.11-cpu-linux-x86_64") {
				t.Fatalf("err = %v, want one naming the target and saying %q", err, tt.want)
			}
			if !errors.Is(err, ErrBadValue) && !errors.Is(err, ErrNoURL) {
				t.Errorf("err = %v is neither ErrBadValue nor ErrNoURL", err)
			}
		})
	}
	// Loopback http is fine when insecure (tests, local mirrors).
	a := layered()
	a.Layers[0].URLs = []string{"http://127.0.0.1:1/x.tar.gz"}
	if _, err := Script("1.2.0", a, Options{Layers: true, AllowInsecure: true}); err != nil {
		t.Errorf("a loopback http layer URL with AllowInsecure: %v", err)
	}
}

func TestScriptAllowsLoopbackHTTPWhenInsecure(t *testing.T) {
	s, err := Script("1.2.0", artifact(), Options{URLs: []string{"http://127.0.0.1:8080/x.tar.gz"}, AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, "P=https,http ") {
		t.Errorf("an insecure script must let curl, wget and python3 use http:\n%s", s)
	}
}

func TestDockerArgsQuoting(t *testing.T) {
	for _, script := range []string{"echo hi", "echo 'quoted' \"double\" $HOME\nexit 0", "'"} {
		got := DockerArgs(script)
		// The inverse of POSIX single quoting, as shlex.split and sh read it.
		body := strings.TrimPrefix(got, "bash -c ")
		if !strings.HasPrefix(body, "'") || !strings.HasSuffix(body, "'") {
			t.Fatalf("DockerArgs(%q) = %q: not single-quoted", script, got)
		}
		unquoted := strings.ReplaceAll(body[1:len(body)-1], `'"'"'`, "'")
		if unquoted != script {
			t.Errorf("DockerArgs(%q) unquotes to %q", script, unquoted)
		}
	}
}
