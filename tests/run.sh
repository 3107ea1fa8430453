#!/bin/sh
# Runs every test suite against each build directory given (make test passes
# build and build/asan): the cmocka unit tests, the command-line end-to-end
# tests, and, on the first build, the FAQ check and the evaluation gate.
# Prints one line per suite and a closing "suites: N passed, M failed".
set -u
PYTHON=${PYTHON:-python3}
passed=0
failed=0
failures=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Sanitizers: any report fails the suite; leaks are reports.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"

suite() {
	name=$1
	shift
	if "$@" >"$log" 2>&1; then
		passed=$((passed + 1))
		printf 'PASS  %s\n' "$name"
	else
		failed=$((failed + 1))
		failures="$failures $name"
		printf 'FAIL  %s\n' "$name"
		sed 's/^/      /' "$log" | tail -n 60
	fi
}

first=1
for build in "$@"; do
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		suite "$build: unit $(basename "$t")" "$t"
	done
	suite "$build: cli end-to-end" env FAQBOT="$build/faqbot" "$PYTHON" tests/e2e/test_cli.py
	suite "$build: telegram end-to-end" env FAQBOT="$build/faqbot" "$PYTHON" tests/e2e/test_telegram.py
	suite "$build: matrix end-to-end" env FAQBOT="$build/faqbot" "$PYTHON" tests/e2e/test_matrix.py
	suite "$build: operations end-to-end" env FAQBOT="$build/faqbot" "$PYTHON" tests/e2e/test_ops.py
	if [ $first = 1 ]; then
		suite "$build: faqbot check faq/faq.json is clean" \
			sh -c "out=\$('$build/faqbot' check faq/faq.json 2>&1); rc=\$?; printf '%s' \"\$out\"; [ \$rc = 0 ] && [ -z \"\$out\" ]"
		suite "$build: eval (>= 90% accuracy and rejection)" \
			"$PYTHON" tests/eval/eval.py --faqbot "$build/faqbot" --faq faq/faq.json --min 0.90
		suite "$build: eval on fresh FAQs and questions (dev halves, overall >= 0.45)" \
			"$PYTHON" tests/eval/sets_eval.py --faqbot "$build/faqbot" --half dev --no-xapian --min 0.45
		first=0
	fi
done

# Soak: 2 minutes under faults, then 30 s under valgrind (no leaks).
suite "soak (2 min under faults)" "$PYTHON" tests/soak/soak.py --faqbot "$1/faqbot" --seconds 120
suite "soak under valgrind (30 s, leak check)" "$PYTHON" tests/soak/soak.py --faqbot "$1/faqbot" \
	--seconds 30 --valgrind

# Static analysis: cppcheck and clang-tidy, zero findings.
suite "lint (cppcheck, clang-tidy)" make --no-print-directory lint

# Fuzzing, about 20 s a target, and the replay of every saved crash input.
if command -v clang >/dev/null 2>&1; then
	if make --no-print-directory fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}" >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "PASS  fuzz (libFuzzer, ${FUZZ_SECONDS:-20} s a target)"
		grep '^fuzz:' "$log" | sed 's/^/      /'
	else
		failed=$((failed + 1))
		failures="$failures fuzz"
		echo "FAIL  fuzz"
		grep -v '^CC\|^FUZZ\|^clang' "$log" | sed 's/^/      /' | tail -n 40
	fi
else
	echo "SKIP  fuzz: clang is not installed (apt-get install clang)"
fi

# The container image, when this machine can build one (CI installs buildah).
if PYTHON="$PYTHON" sh tests/docker/docker_test.sh >"$log" 2>&1; then
	passed=$((passed + 1))
	echo "PASS  docker image (buildah): $(grep 'image size' "$log" | sed 's/docker-test: //')"
else
	rc=$?
	if [ $rc = 77 ]; then
		echo "SKIP  docker image: $(tail -n 1 "$log" | sed 's/docker-test: //')"
	else
		failed=$((failed + 1))
		failures="$failures docker-image"
		echo "FAIL  docker image (buildah)"
		sed 's/^/      /' "$log" | tail -n 40
	fi
fi

echo
[ -n "$failures" ] && echo "failed:$failures"
echo "suites: $passed passed, $failed failed"
[ "$failed" = 0 ]
