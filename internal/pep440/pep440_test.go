package pep440

import (
	"strings"
	"testing"
)

// PEP 440's ordering, each version below the next.
func TestCompareOrder(t *testing.T) {
	ordered := []string{
		"1.0.dev456", "1.0a1", "1.0a2.dev456", "1.0a12.dev456", "1.0a12",
		"1.0b1.dev456", "1.0b2", "1.0b2.post345.dev456", "1.0b2.post345", "1.0rc1.dev456", "1.0rc1",
		"1.0", "1.0+abc.5", "1.0+abc.7", "1.0+5", "1.0.post456.dev34", "1.0.post456", "1.0.15", "1.1.dev1",
		"1!0.1",
	}
	for i := range ordered {
		for j := range ordered {
			a, b := MustParse(ordered[i]), MustParse(ordered[j])
			want := cmpInt(i, j)
			if got := Compare(a, b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	for _, same := range [][2]string{
		{"1.0", "1.0.0"}, {"1.0", "v1.0"}, {"1.0a1", "1.0alpha1"}, {"1.0rc1", "1.0c1"}, {"1.0rc1", "1.0-pre1"},
		{"1.0.post1", "1.0-1"}, {"1.0.post1", "1.0r1"}, {"1.0.post0", "1.0.post"}, {"1.0.dev0", "1.0-dev"},
		{"1.0+ubuntu.1", "1.0+Ubuntu-1"}, {"0!1.0", "1.0"}, {" 1.0 ", "1.0"},
	} {
		if Compare(MustParse(same[0]), MustParse(same[1])) != 0 {
			t.Errorf("%s and %s differ", same[0], same[1])
		}
	}
	for _, bad := range []string{"", "one", "1.0-", "1..0", "1.0+", "1.0+a..b", "1.0 2", "99999999999999999999999"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestContains(t *testing.T) {
	tests := []struct {
		spec string
		in   []string
		out  []string
	}{
		{"", []string{"0", "1.0a1"}, nil},
		{">=3.10, <3.14", []string{"3.10", "3.10.0", "3.13.9", "3.12.0rc1"}, []string{"3.9.18", "3.14", "3.14.0a1"}},
		{">=1.0", []string{"1.0", "1.0+local", "1.0.post1"}, []string{"1.0rc1", "0.9"}},
		{"<2.0", []string{"1.9", "1.9.post1", "1.99"}, []string{"2.0", "2.0rc1", "2.0.dev1", "2.0a1"}},
		{"<2.0rc2", []string{"2.0rc1", "2.0a1"}, []string{"2.0rc2", "2.0"}},
		{">1.0", []string{"1.1", "1.0.1", "2.0a1"}, []string{"1.0", "1.0.post1", "1.0+local", "0.9"}},
		{">1.0.post1", []string{"1.0.post2", "1.1"}, []string{"1.0.post1", "1.0"}},
		{"<=1.0", []string{"1.0", "1.0+local", "0.1"}, []string{"1.0.post1", "1.1"}},
		{"==1.0", []string{"1.0", "1.0.0", "1.0+local"}, []string{"1.0.post1", "1.0rc1", "1.1"}},
		{"==1.0+local", []string{"1.0+local"}, []string{"1.0", "1.0+other"}},
		{"==1.*", []string{"1.0", "1.9.9", "1", "1.0rc1", "1.0+x"}, []string{"2.0", "0.9", "10.0"}},
		{"==3.10.*", []string{"3.10", "3.10.12"}, []string{"3.1", "3.11", "3.100"}},
		{"!=1.5.*", []string{"1.4", "1.6", "2.0"}, []string{"1.5", "1.5.3"}},
		{"!=1.0", []string{"1.1", "1.0.post1"}, []string{"1.0", "1.0.0"}},
		{"~=2.2", []string{"2.2", "2.3", "2.9.1"}, []string{"2.1", "3.0", "2.2rc1"}},
		{"~=1.4.5", []string{"1.4.5", "1.4.9"}, []string{"1.5.0", "1.4.4"}},
		{"~=2.2.post3", []string{"2.2.post3", "2.3"}, []string{"2.2", "3.0"}},
		{"===1.0-foo", []string{"1.0-FOO"}, []string{"1.0"}},
		{">=1!1.0", []string{"1!1.0", "2!0.1"}, []string{"5.0"}},
	}
	for _, tt := range tests {
		s, err := ParseSpecifiers(tt.spec)
		if err != nil {
			t.Errorf("%q: %v", tt.spec, err)
			continue
		}
		for _, v := range tt.in {
			if !s.Contains(mustVersion(t, v)) {
				t.Errorf("%q excludes %s", tt.spec, v)
			}
		}
		for _, v := range tt.out {
			if s.Contains(mustVersion(t, v)) {
				t.Errorf("%q admits %s", tt.spec, v)
			}
		}
	}
	for _, bad := range []string{">=", "=>1.0", ">=1.0,", ">=1.*", "~=1", "<1.0+local", "==1.0a1.*", "1.0"} {
		if _, err := ParseSpecifiers(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseSpecifiers(%q): %v, want an error quoting it", bad, err)
		}
	}
}

// "===" compares the text, so its version need not parse.
func mustVersion(t *testing.T, s string) Version {
	v, err := Parse(s)
	if err != nil {
		v = Version{source: s}
	}
	return v
}

// FuzzParse: Parse and ParseSpecifiers never panic, and the order is
// antisymmetric and reflexive on what parses.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.0", "1!2.0rc1.post3.dev4+abc.5", ">=3.10, <3.14", "==1.*", "~=2.2.post3", "v1.0-1"} {
		f.Add(s, "1.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := Parse(a)
		vb, errB := Parse(b)
		if errA == nil && errB == nil {
			if Compare(va, vb) != -Compare(vb, va) || Compare(va, va) != 0 {
				t.Errorf("Compare(%q, %q) is not antisymmetric", a, b)
			}
		}
		if s, err := ParseSpecifiers(a); err == nil && errB == nil {
			s.Contains(vb)
		}
	})
}
