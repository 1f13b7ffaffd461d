package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// A real go test -json stream from a small package with a passing, a
// skipping and a failing test.
const stream = `{"Action":"start","Package":"example.com/p"}
{"Action":"run","Package":"example.com/p","Test":"TestPass"}
{"Action":"output","Package":"example.com/p","Test":"TestPass","Output":"=== RUN   TestPass\n"}
{"Action":"output","Package":"example.com/p","Test":"TestPass","Output":"--- PASS: TestPass (0.00s)\n"}
{"Action":"pass","Package":"example.com/p","Test":"TestPass","Elapsed":0}
{"Action":"run","Package":"example.com/p","Test":"TestSkip"}
{"Action":"output","Package":"example.com/p","Test":"TestSkip","Output":"=== RUN   TestSkip\n"}
{"Action":"output","Package":"example.com/p","Test":"TestSkip","Output":"    p_test.go:9: no gcc to build with\n"}
{"Action":"output","Package":"example.com/p","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}
{"Action":"skip","Package":"example.com/p","Test":"TestSkip","Elapsed":0}
{"Action":"run","Package":"example.com/p","Test":"TestFail"}
{"Action":"output","Package":"example.com/p","Test":"TestFail","Output":"=== RUN   TestFail\n"}
{"Action":"output","Package":"example.com/p","Test":"TestFail","Output":"    p_test.go:12: got 1, want 2\n"}
{"Action":"output","Package":"example.com/p","Test":"TestFail","Output":"--- FAIL: TestFail (0.00s)\n"}
{"Action":"fail","Package":"example.com/p","Test":"TestFail","Elapsed":0}
{"Action":"output","Package":"example.com/p","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/p","Output":"FAIL\texample.com/p\t0.005s\n"}
{"Action":"fail","Package":"example.com/p","Elapsed":0.005}
{"Action":"output","Package":"example.com/q","Output":"ok  \texample.com/q\t0.004s\n"}
{"Action":"pass","Package":"example.com/q","Elapsed":0.004}
`

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	s := &summary{out: &out, output: map[testKey][]string{}, skipped: map[testKey]string{}}
	if err := s.read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	s.printSkipped()
	got := out.String()
	want := "    p_test.go:12: got 1, want 2\n--- FAIL: TestFail (0.00s)\nFAIL\nFAIL\texample.com/p\t0.005s\nok  \texample.com/q\t0.004s\n" +
		"\n== skipped tests: 1\nSKIP example.com/p TestSkip: p_test.go:9: no gcc to build with\n"
	if got != want {
		t.Errorf("summary:\n%s\nwant:\n%s", got, want)
	}
	if !s.failed {
		t.Error("a failing test did not make the summary fail")
	}
}

// The exit status follows the tests: 0 when all passed (skips included).
func TestExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go run; skipped with -short")
	}
	for _, tt := range []struct {
		name, in string
		fail     bool
	}{
		{"failing", stream, true},
		{"passing", `{"Action":"output","Package":"example.com/q","Output":"ok  \texample.com/q\t0.004s\n"}` + "\n" + `{"Action":"pass","Package":"example.com/q"}` + "\n", false},
	} {
		cmd := exec.Command("go", "run", ".")
		cmd.Stdin = strings.NewReader(tt.in)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tt.fail {
			t.Errorf("%s: exit error %v, want failure %v\n%s", tt.name, err, tt.fail, out)
		}
	}
}
