package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// verify checks the layer files published beside each tarball: all pass
// on a fresh snapshot, and one changed on the local channel fails with a
// row naming its target, its layer and its URL. It tampers with the shared
// snapshot, so it does not run in parallel.
func TestVerifyLayerFiles(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	s := sharedSnapshot(t)
	mpath, pub := filepath.Join(s.dist, "manifest.json"), filepath.Join(s.dist, "snapshot.pub")
	v := run(t, dir, nil, "verify", mpath, "--key", pub, "--channel", "local")
	if v.code != 0 || strings.Count(v.stdout, "local (deps layer)") != 4 || strings.Count(v.stdout, "local (worker layer)") != 4 || strings.Count(v.stdout, " ok\n") != 12 {
		t.Errorf("verify --channel local of a fresh snapshot: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	a := s.manifest.Artifacts[1]
	worker := a.Layers[1]
	tampered(t, strings.TrimPrefix(worker.URLs[0], "file://"), func(data []byte) []byte {
		data[len(data)/2] ^= 0xff
		return data
	})
	v = run(t, dir, nil, "verify", mpath, "--key", pub, "--channel", "local")
	var rows []string
	for _, line := range strings.Split(v.stdout, "\n") {
		if strings.Contains(line, "FAIL") {
			rows = append(rows, line)
		}
	}
	if v.code != 1 || len(rows) != 1 || !strings.HasPrefix(rows[0], a.Target.ID+"  local (worker layer)") ||
		!strings.Contains(rows[0], "worker layer "+worker.URLs[0]+": sha256:") {
		t.Errorf("verify of a changed layer file: exit %d, failed rows %q\n%s%s", v.code, rows, v.stdout, v.stderr)
	}
}
