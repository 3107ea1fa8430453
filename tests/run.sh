#!/bin/sh
# The one test runner.  `make test` runs everything against each build
# directory given (build and build/asan); `make check` runs the quick set on
# the normal build.
#
#   tests/run.sh [--quick] [--only PATTERN] [-k FILTER] BUILD...
#
#   (no option)   unit tests, command-line and chat end-to-end tests on every
#                 build; on the first, the FAQ check, the evaluation gate and
#                 the spec extract; then soak, valgrind, lint, fuzz, image.
#   --quick       only the unit, end-to-end, FAQ-check, evaluation and spec
#                 extract suites (no soak, valgrind, lint, fuzz, image).
#   --only P      only the suites whose name contains P (e.g. telegram,
#                 test_store, eval); make check T=P.
#   -k F          inside the suites run, only the tests whose name contains F:
#                 passed to the Python suites as -k F, to the cmocka binaries
#                 as CMOCKA_TEST_FILTER='*F*'; make check K=F.
#
# Prints one line per suite and a closing "suites: N passed, M failed".
set -u
PYTHON=${PYTHON:-python3}
quick=0
only=""
filter=""
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1; shift ;;
	--only) only=${2-}; shift 2 || { echo "run.sh: --only needs a pattern" >&2; exit 2; } ;;
	-k) filter=${2-}; shift 2 || { echo "run.sh: -k needs a test name" >&2; exit 2; } ;;
	-*) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [ $# = 0 ]; then
	echo "usage: tests/run.sh [--quick] [--only PATTERN] [-k FILTER] BUILD..." >&2
	exit 2
fi
kargs=""
if [ -n "$filter" ]; then
	kargs="-k $filter"
	export CMOCKA_TEST_FILTER="*$filter*"
fi
passed=0
failed=0
failures=""
skipped=0
said_skip=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Sanitizers: any report fails the suite; leaks are reports.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"

# Whether the suite named $1 is selected by --only.
wanted() {
	case $1 in *"$only"*) return 0 ;; esac
	skipped=$((skipped + 1))
	return 1
}

# A Python that imports nio and olm: $PYTHON, else Debian's /usr/bin/python3
# (a pyenv or venv python3 on PATH lacks the Debian python3-* modules).
e2ee_python() {
	for p in "$PYTHON" /usr/bin/python3; do
		if "$p" -c 'import nio, olm' >/dev/null 2>&1; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

suite() {
	name=$1
	shift
	wanted "$name" || return 0
	if "$@" >"$log" 2>&1; then
		passed=$((passed + 1))
		printf 'PASS  %s\n' "$name"
		# which protocol definitions the fakes checked requests against
		grep '^spec check:' "$log" | sort -u | sed 's/^/      /'
	else
		failed=$((failed + 1))
		failures="$failures $name"
		printf 'FAIL  %s\n' "$name"
		sed 's/^/      /' "$log" | tail -n 60
	fi
}

finish() {
	echo
	[ -n "$failures" ] && echo "failed:$failures"
	if [ -n "$only" ] && [ $((passed + failed + said_skip)) = 0 ]; then
		echo "run.sh: no suite name contains '$only'"
		exit 1
	fi
	if [ -n "$only" ]; then
		echo "suites: $passed passed, $failed failed ($skipped not selected by --only '$only')"
	else
		echo "suites: $passed passed, $failed failed"
	fi
	[ "$failed" = 0 ]
	exit
}

first=1
for build in "$@"; do
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] || continue
		suite "$build: unit $(basename "$t")" "$t"
	done
	# every tests/e2e/test_*.py (a new transport's suite runs without an edit here)
	for f in tests/e2e/test_*.py; do
		e=${f#tests/e2e/test_}
		e=${e%.py}
		py=$PYTHON
		if [ "$e" = e2ee ]; then
			# the encrypted-room tests need a Python with nio and olm
			# (Debian's python3-matrix-nio, python3-olm)
			wanted "$build: $e end-to-end" || continue
			py=$(e2ee_python) || {
				echo "SKIP  $build: e2ee end-to-end: no Python with nio and olm (apt-get install python3-matrix-nio python3-olm)"
				said_skip=$((said_skip + 1))
				continue
			}
		fi
		# shellcheck disable=SC2086 # kargs is "-k FILTER" or nothing
		suite "$build: $e end-to-end" env FAQBOT="$build/faqbot" "$py" tests/e2e/test_$e.py $kargs
	done
	if [ $first = 1 ]; then
		suite "$build: faqbot check faq/faq.json is clean" \
			sh -c "out=\$('$build/faqbot' check faq/faq.json 2>&1); rc=\$?; printf '%s' \"\$out\"; [ \$rc = 0 ] && [ -z \"\$out\" ]"
		suite "$build: eval (>= 90% accuracy and rejection)" \
			"$PYTHON" tests/eval/eval.py --faqbot "$build/faqbot" --faq faq/faq.json --min 0.90
		suite "$build: eval on fresh FAQs and questions (dev halves, overall >= 0.52)" \
			"$PYTHON" tests/eval/sets_eval.py --faqbot "$build/faqbot" --half dev --no-xapian --min 0.52
		first=0
	fi
done

# The committed spec extract (tests/fake/specs) against ../shared/specs,
# when that folder is beside this clone: a notice when they differ.
if wanted "spec extract"; then
	"$PYTHON" tests/fake/extract_specs.py --check >"$log" 2>&1
	case $? in
	0) passed=$((passed + 1)); echo "PASS  spec extract (tests/fake/specs) matches ../shared/specs" ;;
	77) echo "SKIP  spec extract: ../shared/specs is not beside this clone; the e2e tests check against the committed extract" ;;
	# ../shared is a convenience, never a test dependency: drift is told, not failed
	# (the e2e tests above used ../shared/specs itself); refresh the extract with
	# python3 tests/fake/extract_specs.py.
	*) echo "NOTE  spec extract differs from ../shared/specs (run: python3 tests/fake/extract_specs.py)"
	   sed 's/^/      /' "$log" | tail -n 5 ;;
	esac
fi

if [ $quick = 1 ]; then
	finish
fi

# Soak: 2 minutes under faults, then 30 s under valgrind (no leaks).
suite "soak (2 min under faults)" "$PYTHON" tests/soak/soak.py --faqbot "$1/faqbot" --seconds 120
suite "soak under valgrind (30 s, leak check)" "$PYTHON" tests/soak/soak.py --faqbot "$1/faqbot" \
	--seconds 30 --valgrind

# Static analysis: cppcheck and clang-tidy, zero findings.
suite "lint (cppcheck, clang-tidy)" make --no-print-directory lint

# Fuzzing, about 20 s a target, and the replay of every saved crash input.
if ! wanted fuzz; then
	:
elif command -v clang >/dev/null 2>&1; then
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
if ! wanted "docker image"; then
	:
elif PYTHON="$PYTHON" sh tests/docker/docker_test.sh >"$log" 2>&1; then
	passed=$((passed + 1))
	echo "PASS  docker image (buildah): $(grep 'image size' "$log" | sed 's/docker-test: //')"
	# the figures: size by part, language data, memory in service
	awk '/image size/ { after = 1; next } /docker-test: ok/ { next }
	     after || /memory of the bot/ { sub(/^docker-test: /, ""); print "      " $0 }' "$log"
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

finish
