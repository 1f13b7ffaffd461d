#!/usr/bin/env bash
# Mutation check: breaks each key claim of fwrelease on purpose, one small
# change at a time, in a copy of the tree (never the working tree), and runs
# the tests that claim to guard it. Every mutation must make one of those
# tests fail. A mutation that survives means the claim is unguarded; one that
# no longer applies (the code moved) or no longer compiles is stale and this
# list needs updating. Either way the script exits 1 (stale ones only
# without --allow-stale).
#
# Needs what the named tests need: versitygw for the S3 ones, cosign and
# Python for the end-to-end ones (.ci/run installs them).
#
# usage: scripts/mutation-check.sh            every mutation
#        scripts/mutation-check.sh NAME...    only these
#        scripts/mutation-check.sh -l         list them
#        scripts/mutation-check.sh -n         only check that each still applies
#        --allow-stale (first)  a mutation that no longer applies or compiles
#                               is reported STALE but does not fail the run
#                               (for trying a change locally; .ci/run runs
#                               without it, so a stale mutation fails CI).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="${HOME}/go/bin:/usr/local/go/bin:${PATH}"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

# Each mutation: a name, the claim it breaks, the package and tests (a -run
# pattern) that must catch it, then one or more edits: a file, a perl regular
# expression (multi-line, /s) and its replacement (${1}… are the groups).
# Every edit must match.
names=() claims=() pkgs=() runs=() edits=()
mutation() { # NAME CLAIM PKG RUN FILE FROM TO [FILE FROM TO]...
	names+=("$1") claims+=("$2") pkgs+=("$3") runs+=("$4")
	shift 4
	local e=""
	while [ $# -ge 3 ]; do
		e+="$1"$'\x1f'"$2"$'\x1f'"$3"$'\x1e'
		shift 3
	done
	edits+=("$e")
}

# --- reproducible bytes
mutation pack-mtime-wall-clock "reproducible bytes" \
	./internal/archive '^TestPackIsDeterministic$' \
	internal/archive/pack.go 'ModTime: p\.o\.Epoch,' 'ModTime: time.Now(),'
mutation gzip-header-wall-clock "reproducible bytes" \
	./internal/archive '^TestPackIsDeterministic$' \
	internal/archive/gzip.go '(header := \[\]byte\{[^\n]*\}\n)' '${1}	binary.LittleEndian.PutUint32(header[4:8], uint32(time.Now().Unix()))
' \
	internal/archive/gzip.go '"sync/atomic"' '"sync/atomic"; "time"'
mutation mode-from-disk "reproducible bytes" \
	./internal/archive '^TestPackIsDeterministic$' \
	internal/archive/pack.go '(func normalMode\(m fs\.FileMode\) int64 \{.*?)return 0o644' '${1}return int64(m.Perm())'
mutation release-epoch-from-clock "reproducible bytes" \
	./cmd/fwrelease '^TestSnapshotIsReproducible$' \
	internal/build/build.go 'Epoch:\s*b\.Source\.Epoch,' 'Epoch: time.Now().Truncate(time.Second),'

# --- re-runs upload nothing
mutation s3-skip-only-single-put "re-runs upload nothing" \
	./internal/publish '^TestS3RepublishWritesNothingAtTheServer$' \
	internal/publish/s3.go 'if exists && have == obj\.SHA256 \{' 'if exists && have == obj.SHA256 && obj.Size <= p.threshold() {'
mutation s3-already-published-uploads "re-runs upload nothing" \
	./internal/publish '^TestS3RepublishWritesNothingAtTheServer$' \
	internal/publish/s3.go '(Debug\("already published"[^\n]*\n\s*)return (p\.URL\([^\n]*\)), nil' '${1}return ${2}, p.put(ctx, key, obj, true)'
mutation local-replaces-published "re-runs upload nothing" \
	./cmd/fwrelease '^TestKeylessReleaseVerifies$' \
	internal/publish/local.go 'if !l\.Replace \{' 'if false {'

# --- uploads are checked in transit, at no extra SHA-256 pass
mutation s3-part-without-crc32c "checked in transit" \
	./internal/publish '^TestS3(UploadsCarryChecksumsNotPayloadHashes|CorruptedInTransitIsRefused)$' \
	internal/publish/s3.go '(ContentLength: aws\.Int64\(part\.Size\(\)\),\s*)ChecksumCRC32C: &sum,' '${1}'
mutation s3-part-payload-signed "checked in transit" \
	./internal/publish '^TestS3UploadsCarryChecksumsNotPayloadHashes$' \
	internal/publish/s3.go '\}, withPayloadHash\(unsignedPayload\)\)' '})'
# --- resume resumes
mutation s3-resume-from-zero "resume resumes" \
	./internal/publish '^TestS3CutOffDownloadResumes$' \
	internal/publish/s3get.go 'Range:\s*aws\.String\(fmt\.Sprintf\("bytes=%d-", off\)\),\s*IfMatch:\s*aws\.String\(etag\),' '' \
	internal/publish/s3get.go 'return rest\.Body, nil' '_, err = io.CopyN(io.Discard, rest.Body, off)
			_ = fmt.Sprint()
			return rest.Body, err'
mutation s3-resume-no-if-match "resume resumes" \
	./internal/publish '^TestS3CutOffDownloadResumes$' \
	internal/publish/s3get.go 'IfMatch:\s*aws\.String\(etag\),' ''
mutation verify-resume-no-if-range "resume resumes" \
	./internal/verify '^TestDownloadResumesCutOffBody$' \
	internal/verify/resume.go 'req\.Header\.Set\("If-Range", etag\)' '_ = etag'

# --- downloads at build time are bounded in size and time
mutation build-download-unbounded "downloads are bounded" \
	./internal/build '^Test(ExtraFile|LockedWheel)DownloadBounded$' \
	internal/build/extra.go 'io\.LimitReader\(r, limit\+1\)' 'io.LimitReader(r, 1<<62)'
mutation build-download-no-idle-timeout "downloads are bounded" \
	./internal/build '^Test(ExtraFile|LockedWheel)DownloadBounded$' \
	internal/build/extra.go 'time\.AfterFunc\(idleTimeout,' 'time.AfterFunc(24*time.Hour,'

# --- image layers and images repeat their digests
mutation layer-mtime-wall-clock "reproducible layers" \
	./internal/layer '^TestSplitByDefault$|^TestLayersReproducible$' \
	internal/layer/layer.go 'Epoch: o\.Epoch, Format: archive\.TarGz' 'Epoch: time.Now(), Format: archive.TarGz'
mutation layer-no-split "deps apart from the worker" \
	./internal/layer '^TestSplitByDefault$' \
	internal/layer/layer.go 'for i, part := range Split\(entries, rules\) \{' 'for i, part := range [][]archive.Entry{entries, nil}[:len(rules)] {'
mutation image-created-wall-clock "reproducible images" \
	./internal/image '^TestMount$' \
	internal/image/image.go 'cfg\.Created = v1\.Time\{Time: m\.Created\}' 'cfg.Created = v1.Time{Time: time.Now()}'

mutation image-tree-unchecked "verify reads the image's tree" \
	./internal/verify '^TestImageTree$' \
	internal/verify/image.go 'if got := hex\.EncodeToString\(listing\.Sum\(nil\)\); got != meta\.TreeSHA256 \{' 'if got := hex.EncodeToString(listing.Sum(nil)); false && got != meta.TreeSHA256 {'
mutation image-signature-unchecked "verify checks image signatures" \
	./cmd/fwrelease '^TestSnapshotOCILayout$' \
	internal/verify/image.go '\tif o\.Verifier != nil \{' '	if false && o.Verifier != nil {'
mutation layer-file-digest-unchecked "verify checks layer files" \
	./internal/verify '^TestLayerFiles$' \
	internal/verify/layer.go 'case "sha256:"\+c\.SHA256 != l\.Digest:' 'case false:'
mutation layer-file-published-unchecked "only the built layers are published" \
	./internal/release '^TestTamperedLayerFileIsRefused$' \
	internal/release/layers.go 'a\.Layers, true\)' 'a.Layers, false)'

# --- a stale uv.lock is refused
mutation stale-lock-accepted "the lock matches pyproject.toml" \
	./cmd/fwrelease '^TestRealWorkerStaleLock$' \
	internal/build/lockdeps.go 'if err := lock\.CheckFresh\(proj\); err != nil \{' 'if err := lock.CheckFresh(proj); false && err != nil {'

# --- what a run-time install and an LB start need (issue 25)
mutation record-slimmed "RECORD is kept for run-time upgrades" \
	./internal/build '^TestSlimRules$' \
	internal/build/slim.go '"direct_url\.json": true\}' '"direct_url.json": true, "RECORD": true}'

mutation bundled-scripts-in-site-packages "bundled console scripts are in venv/bin" \
	./internal/build '^TestScriptsMovedToVenv$' \
	internal/build/bundled.go 'to := filepath\.Join\(root, "venv", "bin"\)' 'to := from'

# --- wheels unpack inside the tree
mutation wheel-unpack-by-path "writes stay in the tree" \
	./internal/build '^TestUnpackWheelStaysInTree$' \
	internal/build/lockdeps.go 'if err := tree\.MkdirAll\(filepath\.Dir\(out\), 0o755\); err != nil \{\s*return err\s*\}\s*tree\.Remove\(out\)\s*w, err := tree\.OpenFile\(out,' 'out = filepath.Join(tree.Name(), out)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	os.Remove(out)
	w, err := os.OpenFile(out,' \
	internal/build/lockdeps.go 'return tree\.Chmod\(out, mode\)' 'return os.Chmod(out, mode)'

mutation wheel-unpack-unbounded "the unpacked tree is bounded" \
	./internal/build '^TestUnpackWheelBounded$' \
	internal/build/lockdeps.go 'if err := budget\.take\(size\); err != nil \{' 'if err := budget.take(0); err != nil {'

# --- secrets hidden
# The CLI redacts known secrets from everything it prints, so a leak needs
# both a secret in a message and the redactor letting it through; each
# mutation breaks one guard, then both.
mutation redactor-passes-env-secrets "secrets hidden" \
	./internal/redact '' \
	internal/redact/redact.go 's = strings\.ReplaceAll\(s, secret, Mask\)' 's = strings.ReplaceAll(s, secret, secret)'
mutation password-in-key-error "secrets hidden" \
	./cmd/fwrelease '^TestSecretsNeverPrinted$' \
	internal/sign/key.go '(UnmarshalPEMToPrivateKey\(data, password\)\s*if err != nil \{.*?)return nil, err' '${1}return nil, fmt.Errorf("%w (with password %s)", err, os.Getenv(PasswordEnv))' \
	internal/redact/redact.go 's = strings\.ReplaceAll\(s, secret, Mask\)' 's = strings.ReplaceAll(s, secret, secret)'

# --- slimming never breaks an import: a private extension module that
# code names (through importlib, or from another extension module) stays.
mutation slim-ext-strings-ignored "slimming keeps imports" \
	./internal/build '^TestUnusedExtensions$' \
	internal/build/slimext.go '(\} else \{\n\s*)out = append\(out, src\[i:end\]\.\.\.\)' '${1}out = append(out, byte(32))'
mutation slim-ext-so-ignored "slimming keeps imports" \
	./internal/build '^TestUnusedExtensions$' \
	internal/build/slimext.go '(data = pythonCode\(data\)\n\s*\})' '${1} else if strings.HasSuffix(f, ".so") {
			continue
		}'
# The metadata importlib.metadata reads (version, requirements) stays.
mutation slim-metadata-headers-dropped "slimming keeps imports" \
	./internal/build '^TestSlimRules$' \
	internal/build/slimscan.go 'inDescription = strings\.HasPrefix\(strings\.ToLower\(text\), "description:"\)' 'inDescription = true'
# --- a dropped response does not fail a release
mutation httpretry-no-read-ahead "a cut response is retried" \
	./internal/httpretry '^TestCutResponses$' \
	internal/httpretry/httpretry.go 'if resp, err = readAhead\(r, resp\); err == nil \{' 'if err == nil {'
# --- nothing runs unverified
mutation verify-skips-signature "nothing runs unverified" \
	./cmd/fwrelease '^TestVerifyRejectsTampering$' \
	internal/verify/verify.go 'return v\.Check\(b, "sha256", digest\)' '_ = b
	return "key", nil'
# A keyless signature is accepted only from the repository that released:
# every caller of the reusable workflow shares its SAN.
mutation keyless-any-repository "nothing runs unverified" \
	./internal/sign '^TestKeylessVerificationPinsTheSourceRepository$' \
	internal/sign/verify.go 'ext\.SourceRepositoryURI = uri' '_ = uri'
mutation keyless-any-ref "nothing runs unverified" \
	./internal/sign '^TestKeylessVerificationPinsTheSourceRepository$' \
	internal/sign/verify.go 'if v\.tagsOnly && ' 'if false && v.tagsOnly && '
# The start script: a download or a cached blob is run only if its sha256
# is the release's. The first mutation is the one an audit found unguarded:
# a well-formed tarball (tar's status, as gzip -t once was) instead of the
# digest, which another target's tarball passes.
mutation start-script-gzip-t "nothing runs unverified" \
	./cmd/fwrelease '^TestStartScript$/^bash$/^curl$' \
	internal/inject/start.sh.tmpl '\[ "\$h" = "\$w" \] \|\| return 1' '[ "$e" = 0 ] || return 1' \
	internal/inject/start.sh.tmpl '\[ "\$h" = "\$v" \] \|\| return 1' '[ "$e" = 0 ] || return 1'
mutation start-script-cache-unchecked "nothing runs unverified" \
	./cmd/fwrelease '^TestStartScript$/^bash$/^curl$' \
	internal/inject/start.sh.tmpl 'if (hit \$f); then' 'if ${1} || :; then'
# A hit prefers the tarball's uncompressed tar stream, checked against the
# manifest's diff_id (not the tarball's sha256, which it can never match).
mutation start-script-tar-copy-unused "fast volume hits" \
	./cmd/fwrelease '^TestStartScript$/^dash$/^python$' \
	internal/inject/start.sh.tmpl 'v=\$\{1%\.tar\}' 'v=$k'
# Extraction overlaps the download: a stream whose sha256 differs must leave
# nothing behind (the private directory goes) and run nothing.
mutation start-script-stream-mismatch-kept "nothing runs unverified" \
	./cmd/fwrelease '^TestStartScript$/^dash$/^python$' \
	internal/inject/start.sh.tmpl 'trap "rm -rf \$W \$W\.t" EXIT' ':'
# The layered script (issue 26, item 5): every layer is checked against its
# digest, and a layer that mismatched after extracting over the others
# costs the whole tree, not just that layer.
mutation start-script-layer-unchecked "nothing runs unverified" \
	./internal/inject '^TestLayeredStartScript$/^dash$/^wget$' \
	internal/inject/start.sh.tmpl '\[ "\$h" = "\$w" \] \|\| return 1' '[ -n "$h" ] || return 1'
mutation start-script-layer-tree-kept "nothing runs unverified" \
	./internal/inject '^TestLayeredStartScript$/^bash$/^python$' \
	internal/inject/start.sh.tmpl '\{ rm -rf "\$W\.t"; mkdir -m 755 "\$W\.t"; \}' ':'
# A download is inflated at most to its tar stream's tar_size: a gzip bomb
# from a mirror costs that much disk, not a thousand times its size. Where
# the stream's copy goes to the volume, the bound is tee's file size limit;
# elsewhere (a layer with no volume), head's.
mutation start-script-layer-unbounded-inflate "bounded downloads" \
	./internal/inject '^TestLayeredStartScriptGzipBomb$/^dash$/^python$/^layers-no-volume$' \
	internal/inject/start.sh.tmpl 'head -c \$\(\(y \+ 1\)\); fi' 'cat; fi'
mutation start-script-tar-copy-unbounded "bounded downloads" \
	./internal/inject '^TestLayeredStartScriptGzipBomb$/^dash$/^python$/^tarball$' \
	internal/inject/start.sh.tmpl 'ulimit -f \$\(\(y / 512 \+ 1\)\) 2>/dev/null' ':'
# A co-tenant on the volume (issue 28, finding 2): the cache directories are
# used only when they are the volume's own, not symlinks to local ones.
mutation start-script-symlinked-cache "a hostile volume costs the cache" \
	./cmd/fwrelease '^TestStartScriptHostileVolume$/^bash$/^sha256_is_a_symlink_to_a_local_directory$' \
	internal/inject/start.sh.tmpl '\[ "\$PWD" = "\$R" \] && ' '' \
	internal/inject/start.sh.tmpl ' && \[ "\$PWD" = "\$R/sha256" \]' ''
# A co-tenant that makes the blob's final name a symlink to a local
# directory: mv -T replaces the name instead of moving into the directory.
mutation start-script-mv-into-symlink "a hostile volume costs the cache" \
	./cmd/fwrelease '^TestStartScriptHostileVolume$/^bash$/^the_blob.s_name_becomes' \
	internal/inject/start.sh.tmpl 'mv -fT "\$S" "\$B"' 'mv -f "$S" "$B"'
# Downloads stop at the release's size (issue 28, finding 3).
mutation start-script-unbounded-download "bounded downloads" \
	./cmd/fwrelease '^TestStartScriptBoundedDownloads$/^bash$/^curl$/^endless$' \
	internal/inject/start.sh.tmpl 'head -c \$\(\(b \+ 1\)\) \|' 'cat |' \
	internal/inject/start.sh.tmpl ' --max-filesize \$n' ''
# python3 alone bounds what it reads itself: no head -c on that path.
mutation start-script-python-unbounded "bounded downloads" \
	./cmd/fwrelease '^TestStartScriptBoundedDownloads$/^dash$/^python$/^endless$' \
	internal/inject/start.sh.tmpl 'int\(a\[4\]\) \+ 1' '1 << 62'
# The C library's answer comes in the background: a volume hit must still
# wait for it before exec, and an unfit image runs nothing.
mutation start-script-libc-unchecked-hit "nothing runs on an unfit image" \
	./cmd/fwrelease '^TestStartScriptPreflight$' \
	internal/inject/start.sh.tmpl 'fetch\nlibc' 'fetch'
# python3 imports nothing that compiles for long in a fresh container.
mutation start-script-python-idna "fast python3 start" \
	./cmd/fwrelease '^TestStartScriptPythonImports$' \
	internal/inject/start.sh.tmpl 'getaddrinfo\(h\.encode\(\) if h\.isascii\(\) else h,' 'getaddrinfo(h,'
mutation start-script-python-ssl "fast python3 start" \
	./cmd/fwrelease '^TestStartScriptPythonImports$' \
	internal/inject/start.sh.tmpl '__slots__ = \("__weakref__",\)' '__slots__ = ()'

if [ "${1:-}" = -l ]; then
	for i in "${!names[@]}"; do
		files=$(printf '%s' "${edits[$i]}" | awk 'BEGIN { RS = "\036"; FS = "\037" } NF { print $1 }' | sort -u | paste -sd' ' -)
		printf '%-28s %-24s %s  (go test -run %s %s)\n' "${names[$i]}" "${claims[$i]}" "$files" "${runs[$i]:-.}" "${pkgs[$i]}"
	done
	exit 0
fi
allow_stale=0 apply_only=0
if [ "${1:-}" = -n ]; then
	apply_only=1
	shift
fi
if [ "${1:-}" = --allow-stale ]; then
	allow_stale=1
	shift
fi
want=("$@")
in_list() { # WORD LIST...
	local w=$1 x
	shift
	for x in "$@"; do [ "$x" = "$w" ] && return 0; done
	return 1
}
for w in "${want[@]}"; do
	in_list "$w" "${names[@]}" || { echo "no mutation named $w (-l lists them)" >&2; exit 2; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The copy: every file git tracks or would track, as it is on disk now
# (outside a git checkout, everything).
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$root" ls-files -z --cached --others --exclude-standard |
		(cd "$root" && tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -C "$work" -xf -
else
	cp -a "$root/." "$work"
fi

apply() { # EDITS: FILE US FROM US TO RS, each FROM must match
	local edit file rest from to
	while IFS= read -r -d $'\x1e' edit; do
		file=$work/${edit%%$'\x1f'*} rest=${edit#*$'\x1f'}
		from=${rest%%$'\x1f'*} to=${rest#*$'\x1f'}
		[ -f "$file.orig" ] || cp "$file" "$file.orig"
		if ! FROM=$from perl -0ne 'exit(/$ENV{FROM}/s ? 0 : 1)' "$file"; then
			echo "pattern not found in ${file#"$work"/}: $from"
			return 1
		fi
		# ${1}… in the replacement are the pattern's groups; nothing else is
		# interpolated.
		FROM=$from TO=$to perl -0pi -e 's/$ENV{FROM}/my @g = ($1, $2, $3); (my $t = $ENV{TO}) =~ s{\$\{(\d)\}}{$g[$1 - 1]}g; $t/se' "$file"
	done <<<"${1}"
}

restore() { # puts back every file an edit changed
	find "$work" -name '*.orig' -print0 | while IFS= read -r -d '' f; do mv "$f" "${f%.orig}"; done
}

# failing_tests names the tests that failed in a go test log, the deepest
# subtest only (a parent fails with its child).
failing_tests() {
	grep -o -- '--- FAIL: [^ ]*' "$1" | sed 's/--- FAIL: //' | sort -u |
		awk 'prev != "" && index($0, prev "/") != 1 { print prev } { prev = $0 } END { if (prev != "") print prev }' |
		paste -sd, -
}

failed=0
caught=0
stale=0
for i in "${!names[@]}"; do
	name=${names[$i]}
	if [ ${#want[@]} -gt 0 ] && ! in_list "$name" "${want[@]}"; then
		continue
	fi
	log=$work/$name.log
	if ! apply "${edits[$i]}" >"$log" 2>&1; then
		printf 'STALE     %-28s does not apply: %s\n' "$name" "$(cat "$log")"
		stale=$((stale + 1))
	elif [ $apply_only = 1 ]; then
		printf 'applies   %s\n' "$name"
	elif (cd "$work" && go test -count=1 -run "${runs[$i]:-.}" "${pkgs[$i]}") >"$log" 2>&1; then
		printf 'SURVIVED  %-28s %s: go test -run %s %s passed\n' "$name" "${claims[$i]}" "${runs[$i]:-.}" "${pkgs[$i]}"
		failed=1
	elif by=$(failing_tests "$log") && [ -n "$by" ]; then
		printf 'caught    %-28s %-24s by %s\n' "$name" "${claims[$i]}" "$by"
		caught=$((caught + 1))
	else
		printf 'STALE     %-28s the tests did not run (build failure?):\n' "$name"
		sed 's/^/    /' "$log" | tail -20
		stale=$((stale + 1))
	fi
	restore
done
if [ $stale -gt 0 ] && [ $allow_stale = 0 ]; then
	failed=1
fi
if [ $apply_only = 1 ]; then
	echo "mutation check -n: $stale stale"
	exit $((stale > 0))
fi
echo "mutation check: $caught caught, $stale stale, $([ $failed = 0 ] && echo "none survived" || echo "FAILED")"
exit $failed
