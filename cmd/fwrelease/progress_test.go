package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	b := newBar(&buf)
	b.report("v1.2.0/a.tar.gz", 0, 4<<20)
	b.report("v1.2.0/a.tar.gz", 1<<20, 4<<20) // within 100ms: skipped
	b.report("v1.2.0/a.tar.gz", 4<<20, 4<<20) // finished: always drawn, ends the line
	out := buf.String()
	if strings.Count(out, "\r") != 2 || !strings.HasSuffix(out, "100% 4.0 MiB/4.0 MiB\n") || !strings.Contains(out, "[==============================]") {
		t.Errorf("bar output %q", out)
	}
	g := &globalOptions{stderr: &buf}
	if g.progressBar() != nil {
		t.Error("a progress bar on a non-terminal")
	}
}
