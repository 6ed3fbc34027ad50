#!/bin/sh
# Runs the audit log benchmarks and compares `audit verify` with sha256sum
# on the same generated log file:
#   bench/audit.sh                  # 3s per benchmark, a 64 MiB log
#   BENCHTIME=10s AUDIT_BENCH_MB=256 bench/audit.sh
# Appends are fsynced in a temporary directory, so the numbers are those
# of the disk under $TMPDIR (default /tmp).
set -eu
cd "$(dirname "$0")/.."
benchtime=${BENCHTIME:-3s}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

out=$(AUDIT_BENCH_DIR=$dir go test ./audit/ -run '^$' \
	-bench 'BenchmarkAppend|BenchmarkRawFsync|BenchmarkVerify|BenchmarkSHA256File' \
	-benchtime "$benchtime" -count 1)
echo "$out"

# sha256sum, timed over three runs on the file the benchmarks verified.
file=$dir/audit-000001.jsonl
size=$(stat -c %s "$file")
sha256sum "$file" >/dev/null # warm the page cache
start=$(date +%s%N)
for _ in 1 2 3; do sha256sum "$file" >/dev/null; done
end=$(date +%s%N)

echo "$out" | awk -v size="$size" -v ns="$((end - start))" '
	function metric(unit,   i) {
		for (i = 1; i < NF; i++) if ($(i + 1) == unit) return $i
	}
	/^BenchmarkAppend\/writers=/ {
		split($1, a, "[=-]")
		printf "append, %2d writers: %9.0f appends/s, %5.1f records/fsync\n",
			a[2], metric("appends/s"), metric("records/fsync")
	}
	/^BenchmarkRawFsync/ { printf "raw write+fsync:     %9.0f fsyncs/s\n", metric("fsyncs/s") }
	/^BenchmarkVerify/ { verify = metric("MB/s"); vcpu = metric("MB/cpu-s") }
	/^BenchmarkSHA256File/ { gosha = metric("MB/s"); scpu = metric("MB/cpu-s") }
	END {
		sum = size * 3 / (ns / 1e9) / 1e6
		printf "verify:              %9.1f MB/s (%.1f MB per CPU second)\n", verify, vcpu
		printf "Go sha256 of file:   %9.1f MB/s (%.1f MB per CPU second)\n", gosha, scpu
		printf "sha256sum:           %9.1f MB/s\n", sum
		printf "verify / Go sha256:  %9.2f (per CPU second %.2f)\n", verify / gosha, vcpu / scpu
		printf "verify / sha256sum:  %9.2f\n", verify / sum
	}'
