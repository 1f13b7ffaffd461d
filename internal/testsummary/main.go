// Command testsummary reads `go test -json` on stdin and prints what plain
// `go test` would (each package's closing line, the output of failing
// tests, build errors), then the list of skipped tests with their reasons,
// so a skip is never invisible in CI. It exits 1 if anything failed.
//
//	go test -json ./... | go run ./internal/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output events
	Test       string
	Output     string
}

type testKey struct{ pkg, test string }

// summary is what has been read so far.
type summary struct {
	out     io.Writer
	output  map[testKey][]string // each running test's output, until it ends
	skipped map[testKey]string   // reason
	failed  bool
}

func main() {
	s := &summary{out: os.Stdout, output: map[testKey][]string{}, skipped: map[testKey]string{}}
	if err := s.read(os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "testsummary: reading go test -json: %v\n", err)
		os.Exit(1)
	}
	s.printSkipped()
	if s.failed {
		os.Exit(1)
	}
}

func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Not an event (go vet or the toolchain writing plainly): pass it on.
			fmt.Fprintf(s.out, "%s\n", line)
			continue
		}
		s.handle(e)
	}
	return sc.Err()
}

func (s *summary) handle(e event) {
	k := testKey{e.Package, e.Test}
	switch {
	case e.Action == "build-output":
		fmt.Fprint(s.out, e.Output)
	case e.Action == "build-fail":
		s.failed = true
	case e.Test == "" && e.Action == "output":
		// The package's own lines: "ok  pkg 1.2s", "FAIL pkg", panics.
		if !isFraming(e.Output) && e.Output != "PASS\n" {
			fmt.Fprint(s.out, e.Output)
		}
	case e.Test == "" && e.Action == "fail":
		s.failed = true
	case e.Test == "":
		// A package's start, pass or skip ([no test files]): its line is
		// already out.
	case e.Action == "output":
		s.output[k] = append(s.output[k], e.Output)
	case e.Action == "fail":
		s.failed = true
		for _, l := range s.output[k] {
			if !isFraming(l) {
				fmt.Fprint(s.out, l)
			}
		}
		delete(s.output, k)
	case e.Action == "skip":
		s.skipped[k] = reason(s.output[k])
		delete(s.output, k)
	case e.Action == "pass":
		delete(s.output, k)
	}
}

// isFraming is test2json's progress lines, which plain go test does not print.
func isFraming(l string) bool {
	t := strings.TrimSpace(l)
	return strings.HasPrefix(t, "=== RUN") || strings.HasPrefix(t, "=== PAUSE") || strings.HasPrefix(t, "=== CONT") || strings.HasPrefix(t, "=== NAME")
}

// reason is what a skipped test logged, without the framing lines.
func reason(lines []string) string {
	var r []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || isFraming(l) || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		r = append(r, t)
	}
	if len(r) == 0 {
		return "(no reason given)"
	}
	return strings.Join(r, " ")
}

func (s *summary) printSkipped() {
	keys := make([]testKey, 0, len(s.skipped))
	for k := range s.skipped {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].pkg != keys[j].pkg {
			return keys[i].pkg < keys[j].pkg
		}
		return keys[i].test < keys[j].test
	})
	fmt.Fprintf(s.out, "\n== skipped tests: %d\n", len(keys))
	for _, k := range keys {
		fmt.Fprintf(s.out, "SKIP %s %s: %s\n", k.pkg, k.test, s.skipped[k])
	}
}
