package manifest

import "regexp"

// semverRE is Semantic Versioning 2.0.0, without a leading "v": the form of
// every release's version (docs/manifest.md).
var semverRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
	`(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)

// IsSemver reports whether v is a semantic version such as 1.2.0.
func IsSemver(v string) bool { return semverRE.MatchString(v) }
