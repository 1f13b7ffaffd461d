package slimrule

import "testing"

// Every rule is in the table once, described; a switch overrides the
// default and a rule left out runs by its default.
func TestTable(t *testing.T) {
	seen := map[ID]bool{}
	for _, r := range Rules {
		if seen[r.ID] || r.Description == "" || r.ID.Description() != r.Description {
			t.Errorf("rule %+v: twice, or without a description", r)
		}
		seen[r.ID] = true
	}
	s := Switches{Translations: true, SymbolTables: false, "strip_symbols": true}
	if !s.On(Translations) || s.On(SymbolTables) || !s.On(Tests) || (Switches{}).On(Translations) {
		t.Errorf("On: translations %v, symbol_tables %v, tests %v", s.On(Translations), s.On(SymbolTables), s.On(Tests))
	}
	if u := s.Unknown(); len(u) != 1 || u[0] != "strip_symbols" {
		t.Errorf("Unknown = %v", u)
	}
}
