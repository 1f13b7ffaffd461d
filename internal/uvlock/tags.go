package uvlock

import (
	"fmt"
	"strings"
)

// Tags lists the wheel tags ("py-abi-platform") CPython X.Y accepts on the
// given platforms, most preferred first, in the order pip's packaging.tags
// gives them: the interpreter's own ABI, then the stable ABI of this and
// older versions, then no ABI; platform-specific before "any".
func Tags(python string, platforms []string) []string {
	var minor int
	fmt.Sscanf(python, "3.%d", &minor)
	cp := fmt.Sprintf("cp3%d", minor)
	var tags []string
	for _, plat := range platforms {
		tags = append(tags, cp+"-"+cp+"-"+plat)
	}
	for m := minor; m >= 2; m-- {
		for _, plat := range platforms {
			tags = append(tags, fmt.Sprintf("cp3%d-abi3-%s", m, plat))
		}
	}
	for _, plat := range platforms {
		tags = append(tags, cp+"-none-"+plat)
	}
	for _, py := range pyVersions(minor) {
		for _, plat := range platforms {
			tags = append(tags, py+"-none-"+plat)
		}
	}
	tags = append(tags, cp+"-none-any")
	for _, py := range pyVersions(minor) {
		tags = append(tags, py+"-none-any")
	}
	return tags
}

// pyVersions is py3Y, py3, py3(Y-1) … py30: the generic interpreter tags.
func pyVersions(minor int) []string {
	out := []string{fmt.Sprintf("py3%d", minor), "py3"}
	for m := minor - 1; m >= 0; m-- {
		out = append(out, fmt.Sprintf("py3%d", m))
	}
	return out
}

// wheelRank is the best rank among a wheel file name's tags (its tag parts
// may each be a dotted set), or false when the target accepts none.
func wheelRank(filename string, rank map[string]int) (int, bool) {
	stem, ok := strings.CutSuffix(filename, ".whl")
	if !ok {
		return 0, false
	}
	parts := strings.Split(stem, "-")
	if len(parts) < 5 {
		return 0, false
	}
	pys, abis, plats := parts[len(parts)-3], parts[len(parts)-2], parts[len(parts)-1]
	best, found := 0, false
	for _, py := range strings.Split(pys, ".") {
		for _, abi := range strings.Split(abis, ".") {
			for _, plat := range strings.Split(plats, ".") {
				if r, ok := rank[py+"-"+abi+"-"+plat]; ok && (!found || r < best) {
					best, found = r, true
				}
			}
		}
	}
	return best, found
}
