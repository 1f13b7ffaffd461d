package containertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// A killed test binary's storage (its pid gone) is removed when the next
// one starts; a live binary's, and a name without a pid, are left alone.
func TestRemoveStale(t *testing.T) {
	tmp := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(tmp, fmt.Sprintf("%s%d-1", stalePrefix, gone.ProcessState.Pid()))
	live := filepath.Join(tmp, fmt.Sprintf("%s%d-2", stalePrefix, os.Getpid()))
	odd := filepath.Join(tmp, stalePrefix+"abc")
	for _, d := range []string{dead, live, odd} {
		if err := os.MkdirAll(filepath.Join(d, "root", "overlay"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeStale(tmp)
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the killed binary's %s is still there (%v)", dead, err)
	}
	for _, d := range []string{live, odd} {
		if _, err := os.Stat(filepath.Join(d, "root", "overlay")); err != nil {
			t.Errorf("%s was touched: %v", d, err)
		}
	}
}
