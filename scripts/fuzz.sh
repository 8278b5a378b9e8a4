#!/usr/bin/env bash
# Runs every fuzz target of the module (func FuzzXxx in a *_test.go file)
# for FUZZTIME each (default 2m), one after the other, without -race (the
# fuzzer's own instrumentation finds more per second). A failing target
# leaves its input under the package's testdata/fuzz/FuzzXxx/, where it
# becomes a seed: commit it with the fix. Every target is run even when one
# fails; the exit status is 1 if any did.
#
#   scripts/fuzz.sh                 every target, FUZZTIME each
#   scripts/fuzz.sh FuzzWebhook     the targets whose name matches the regexp
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-2m}
# New inputs are minimised for at most this long, so a short run spends its
# time fuzzing (the default is 60s per input).
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-5s}
filter=${1:-.}

mapfile -t targets < <(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
	sed -E 's|^\./(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' | grep -E " .*${filter}" | sort -u)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no target matches ${filter}" >&2
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${FUZZTIME} each"
failed=()
for t in "${targets[@]}"; do
	pkg=${t% *} name=${t#* }
	start=$(date +%s)
	run() { $GO test "./${pkg}" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" 2>&1; }
	out=$(run)
	rc=$?
	# Go's fuzzing engine can end a run with a bare "context deadline
	# exceeded" when the time runs out while it is minimising a new
	# interesting input: no input failed (none is written). That is the
	# engine, not a finding: run the target once more. A real failure
	# always writes its input and is never retried.
	if [ $rc -ne 0 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written' <<<"$out"; then
		echo "fuzz: ${pkg} ${name}: the engine's deadline ran out while minimising (no failing input); running it again"
		out=$(run)
		rc=$?
	fi
	if [ $rc -eq 0 ]; then
		execs=$(grep -oE 'execs: [0-9]+' <<<"$out" | tail -1)
		echo "ok    ${pkg} ${name} ($(($(date +%s) - start))s, ${execs:-execs: ?})"
	else
		echo "FAIL  ${pkg} ${name}"
		echo "$out" | tail -40
		failed+=("${pkg} ${name}")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
	echo "fuzz: the failing inputs are under each package's testdata/fuzz/; fix, then keep them as seeds" >&2
	exit 1
fi
