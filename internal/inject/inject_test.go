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
	if strings.Contains(s, "file://") || !strings.Contains(s, `U="https://releases.example.com/`) {
		t.Errorf("the script should download from the https URL only:\n%s", s)
	}
	for _, want := range []string{"D=" + DefaultFWDir, "C=" + DefaultCacheDir, "P=https\n", "B=$H.tar.gz", "N=5381205 L=61 ", "tar -xzf - "} {
		if !strings.Contains(s, want) {
			t.Errorf("the script lacks %q", want)
		}
	}
	if strings.Contains(s, "'") {
		t.Errorf("the script holds a single quote, so dockerArgs would need escapes")
	}
}

func TestScriptZstd(t *testing.T) {
	a := artifact()
	a.Format = "tar+zstd"
	s, err := Script("1.2.0", a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, "B=$H.tar.zst") || !strings.Contains(s, "tar --zstd -xf - ") || !strings.Contains(s, " zstd find ") {
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

func TestScriptAllowsLoopbackHTTPWhenInsecure(t *testing.T) {
	s, err := Script("1.2.0", artifact(), Options{URLs: []string{"http://127.0.0.1:8080/x.tar.gz"}, AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, "P=https,http\n") {
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
