#!/bin/sh
# Runs every fuzz target for SECONDS each (libFuzzer), starting from the
# seed corpora in tests/fuzz/corpus/<target>/; a crashing input is saved in
# tests/fuzz/regressions/<target>/ (commit it: it is replayed by make test).
# Then replays every regression input.  Usage: run.sh BUILD_DIR SECONDS
set -u
dir=$1
secs=$2
fail=0
for t in faq match telegram matrix config markup mx_crypto idxcache; do
	bin="$dir/fuzz_$t"
	work=$(mktemp -d /tmp/faqbot-fuzz-corpus.XXXXXX)
	mkdir -p "tests/fuzz/regressions/$t"
	out=$("$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="tests/fuzz/regressions/$t/" \
		"$work" "tests/fuzz/corpus/$t" 2>&1)
	rc=$?
	execs=$(printf '%s\n' "$out" | sed -n 's/^stat::number_of_executed_units: *//p')
	if [ $rc = 0 ]; then
		echo "fuzz: $t: ${execs:-?} executions in ${secs} s, no crash"
	else
		echo "fuzz: $t: CRASH (input saved in tests/fuzz/regressions/$t/)"
		printf '%s\n' "$out" | grep -E "ERROR|SUMMARY|#0|#1|#2|#3" | head -n 12
		fail=1
	fi
	rm -rf "$work"
	n=$(find "tests/fuzz/regressions/$t" -type f | wc -l)
	if [ "$n" -gt 0 ]; then
		if "$bin" tests/fuzz/regressions/$t/* >/dev/null 2>&1; then
			echo "fuzz: $t: $n regression input(s) replayed"
		else
			echo "fuzz: $t: a regression input still crashes"
			fail=1
		fi
	fi
done
exit $fail
