// Package slimrule is the one table of the slimming rules a config can
// switch: each rule's ID (its key under slim.rules), whether it runs by
// default, and what it removes, as the build log names it. Slimming
// (internal/build) runs the rules by these IDs; the config checks
// slim.rules against this table.
package slimrule

// ID names a rule: its key under slim.rules.
type ID string

const (
	Bytecode             ID = "bytecode"
	InstallerMetadata    ID = "installer_metadata"
	PackagingLeftovers   ID = "packaging_leftovers"
	MetadataDescriptions ID = "metadata_descriptions"
	Tests                ID = "tests"
	BuildScripts         ID = "build_scripts"
	Docs                 ID = "docs"
	Sources              ID = "sources"
	Stubs                ID = "stubs"
	TranslationSources   ID = "translation_sources"
	Translations         ID = "translations"
	DuplicateLicenses    ID = "duplicate_licenses"
	UnusedExtensions     ID = "unused_extensions"
	DebugSections        ID = "debug_sections"
	SymbolTables         ID = "symbol_tables"
)

// Rule is one row of the table.
type Rule struct {
	ID          ID
	Default     bool   // whether it runs when slim.rules does not say
	Description string // what it removes, as the build log names it
}

// Rules is every rule a config can switch, in the order the build reports
// them. Off by default is what can break a package that is otherwise fine:
// translations (Django, for one, refuses to start without its catalogue
// for settings.LANGUAGE_CODE).
var Rules = []Rule{
	{Bytecode, true, "bytecode caches"},
	{InstallerMetadata, true, "installer metadata"},
	{PackagingLeftovers, true, "packaging leftovers (egg-info file lists, zip-safe flags, WHEEL, py.typed)"},
	{Tests, true, "tests inside packages"},
	{BuildScripts, true, "build and test scripts inside packages (setup.py, conftest.py)"},
	{Docs, true, "docs and examples"},
	{Sources, true, "C sources, headers, static libraries and build interfaces"},
	{Stubs, true, "type stubs"},
	{TranslationSources, true, "translation sources (*.po, *.pot)"},
	{Translations, false, "translations other than English (*.mo)"},
	{DuplicateLicenses, true, "licence files that repeat another of the same distribution"},
	{MetadataDescriptions, true, "long descriptions in package metadata"},
	{UnusedExtensions, true, "private extension modules nothing imports"},
	{DebugSections, true, "debug sections of shared objects"},
	{SymbolTables, true, "symbol tables of shared objects (strip --strip-unneeded)"},
}

// Find is the rule with ID id.
func Find(id ID) (Rule, bool) {
	for _, r := range Rules {
		if r.ID == id {
			return r, true
		}
	}
	return Rule{}, false
}

// Description is what the rule removes, as the build log names it.
func (id ID) Description() string {
	r, _ := Find(id)
	return r.Description
}

// Switches are slim.rules: whether each rule named runs.
type Switches map[ID]bool

// On reports whether rule id runs: as switched, else by its default.
func (s Switches) On(id ID) bool {
	if on, ok := s[id]; ok {
		return on
	}
	r, _ := Find(id)
	return r.Default
}

// Unknown are the IDs switched that name no rule.
func (s Switches) Unknown() []ID {
	var out []ID
	for id := range s {
		if _, ok := Find(id); !ok {
			out = append(out, id)
		}
	}
	return out
}
