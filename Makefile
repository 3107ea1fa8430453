# faqbot - build, run, test.  `make run` and `make test` install any missing
# Debian package first (.ci/deps.sh), so they work on a fresh Debian 12.
#
#   make            build build/faqbot
#   make run        build and run (the console chat on faq/faq.json without chat credentials)
#   make check      the quick tests: unit and end-to-end on the normal build
#                   (make check T=telegram K=flood: one suite, matching tests)
#   make test       every test, in a normal build and under ASan + UBSan
#   make eval       accuracy on tests/eval/ and on tests/eval/sets/ beside Xapian
#   make bench      speed and memory figures
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean

VERSION  := 0.1.0
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
SANITIZE ?=
CC       ?= cc
# Debian's interpreter, which sees the python3-* packages installed by deps.
PYTHON   ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)

DEB_PACKAGES = build-essential pkg-config libcurl4-openssl-dev libjansson-dev cppcheck clang-tidy \
	libstemmer-dev libutf8proc-dev libedit-dev libcmocka-dev libsqlite3-dev libolm-dev \
	wfrench python3 python3-jsonschema python3-yaml valgrind libxapian-dev \
	hunspell-fr hunspell-en-us mythes-fr mythes-en-us wordnet-base python3-xapian \
	python3-matrix-nio python3-olm

# LIBEDIT=no builds the console without line editing (plain lines on a
# terminal too), one library less to ship: the container image does that.
# Use another BUILD folder (or make clean) when switching it.
LIBEDIT  ?= yes
ifeq ($(LIBEDIT),no)
EDIT_PKG  =
EDIT_DEF  = -DFAQBOT_NO_LIBEDIT
else
EDIT_PKG  = libedit
EDIT_DEF  =
endif

# Lazily expanded: pkg-config runs after `deps` has installed the packages.
PKG_CFLAGS = $(shell pkg-config --cflags libcurl jansson libutf8proc $(EDIT_PKG) sqlite3 olm 2>/dev/null) $(EDIT_DEF)
# libolm: Matrix end-to-end encryption (src/mx_crypto.c, used by src/mx_e2ee.c).
PKG_LIBS   = $(shell pkg-config --libs libcurl jansson libutf8proc $(EDIT_PKG) sqlite3 olm 2>/dev/null) -lstemmer -lm

WARN     = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wvla
OPT      = -O2 -g
ifneq ($(SANITIZE),)
OPT      = -O1 -g -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
endif
CFLAGS_ALL = -std=c11 $(WARN) $(OPT) -Iinclude -I$(BUILD)/gen $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = $(OPT) $(LDFLAGS)

SRCS     = $(filter-out src/main.c,$(wildcard src/*.c))
OBJS     = $(SRCS:src/%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/stopwords.o
HEADERS  = $(wildcard include/*.h)
STOPWORDS = $(wildcard faq/stopwords/*.txt)
CHATWORDS = $(wildcard faq/chat/*.txt)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: lexicon all deps run check test unit-bins eval bench install clean docker-test fuzz fuzz-bins lint soak FORCE

all: deps
	@$(MAKE) --no-print-directory $(BUILD)/faqbot lexicon

# Lexicons (hunspell; English irregular forms from WordNet's exception
# lists) and thesauri (MyThes) compiled to tables the binary
# maps read-only (tools/gen_lexicon.py, tools/gen_thesaurus.py); shared by
# every BUILD directory (the binary looks in <its dir>/../lexicon too).
LEXDIR   = build/lexicon
HUNSPELL = /usr/share/hunspell
MYTHES   = /usr/share/mythes
LEXICONS = $(LEXDIR)/french.lex $(LEXDIR)/english.lex $(LEXDIR)/french.ths $(LEXDIR)/english.ths

lexicon: $(LEXICONS)

$(LEXDIR)/french.lex: tools/gen_lexicon.py | $(LEXDIR)
	@$(PYTHON) tools/gen_lexicon.py --language french $(HUNSPELL)/fr.dic $(HUNSPELL)/fr.aff $@
$(LEXDIR)/english.lex: tools/gen_lexicon.py | $(LEXDIR)
	@$(PYTHON) tools/gen_lexicon.py --language english $(HUNSPELL)/en_US.dic $(HUNSPELL)/en_US.aff $@ \
		--exceptions /usr/share/wordnet/verb.exc --exceptions /usr/share/wordnet/noun.exc
$(LEXDIR)/french.ths: tools/gen_thesaurus.py tools/gen_lexicon.py | $(LEXDIR)
	@$(PYTHON) tools/gen_thesaurus.py $(MYTHES)/thes_fr.dat $@
$(LEXDIR)/english.ths: tools/gen_thesaurus.py tools/gen_lexicon.py | $(LEXDIR)
	@$(PYTHON) tools/gen_thesaurus.py $(MYTHES)/th_en_US_v2.dat $@

deps:
	@sh .ci/deps.sh $(DEB_PACKAGES)

# Version and install paths, rewritten only when they change (so a new
# PREFIX rebuilds main.o and nothing else).
$(BUILD)/gen/buildinfo.h: FORCE | $(BUILD)/gen
	@printf '#define FAQBOT_VERSION "%s"\n#define FAQBOT_DATADIR "%s"\n' \
		'$(VERSION)' '$(PREFIX)/share/faqbot' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/obj/main.o: $(BUILD)/gen/buildinfo.h

FORCE:

$(BUILD)/faqbot: $(BUILD)/obj/main.o $(OBJS)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(BUILD)/obj/%.o: src/%.c $(HEADERS) | $(BUILD)/obj
	@echo "CC $<"
	@$(CC) $(CFLAGS_ALL) -c -o $@ $<

# Stopword lists and chat spellings (faq/chat/) are data files compiled
# into the binary.
$(BUILD)/gen/stopwords.c: $(STOPWORDS) $(CHATWORDS) Makefile | $(BUILD)/gen
	@{ echo '/* generated from faq/stopwords by the Makefile; do not edit */'; \
	  echo '#include <stddef.h>'; \
	  echo 'struct stopword_data { const char *language; const char *words; };'; \
	  echo 'extern const struct stopword_data stopword_data[];'; \
	  echo 'extern const size_t stopword_data_count;'; \
	  echo 'const struct stopword_data stopword_data[] = {'; \
	  for f in $(STOPWORDS); do \
	    printf '{ "%s",\n' "$$(basename $$f .txt)"; \
	    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $$f; \
	    echo '},'; \
	  done; \
	  echo '};'; \
	  echo 'const size_t stopword_data_count = sizeof(stopword_data) / sizeof(stopword_data[0]);'; \
	  echo 'extern const struct stopword_data chat_data[];'; \
	  echo 'extern const size_t chat_data_count;'; \
	  echo 'const struct stopword_data chat_data[] = {'; \
	  for f in $(CHATWORDS); do \
	    printf '{ "%s",\n' "$$(basename $$f .txt)"; \
	    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $$f; \
	    echo '},'; \
	  done; \
	  echo '{ NULL, NULL } };'; \
	  echo 'const size_t chat_data_count = sizeof(chat_data) / sizeof(chat_data[0]) - 1;'; \
	} > $@

$(BUILD)/obj/stopwords.o: $(BUILD)/gen/stopwords.c | $(BUILD)/obj
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/obj $(BUILD)/gen $(BUILD)/tests $(LEXDIR):
	@mkdir -p $@

$(BUILD)/tests/%: tests/unit/%.c tests/unit/cmocka_filter.c $(OBJS) $(HEADERS) | $(BUILD)/tests
	$(CC) $(CFLAGS_ALL) -DTEST_DATA_DIR='"tests/data"' -o $@ $< tests/unit/cmocka_filter.c $(OBJS) $(LDFLAGS_ALL) \
		$(PKG_LIBS) $$(pkg-config --libs cmocka)

unit-bins: $(UNIT_BINS) $(BUILD)/faqbot lexicon

# The console chat on faq/faq.json, or Telegram when a token is configured
# (FAQBOT_TELEGRAM_TOKEN, or telegram_token in config/faqbot.conf).
run: all
	@exec ./$(BUILD)/faqbot run --config config/faqbot.conf

# The quick set, on the normal build only: unit and end-to-end tests, the FAQ
# check, the evaluation gate (no sanitizer build, soak, valgrind, lint, fuzz
# or image; that is make test).  T=PATTERN runs only the suites whose name
# contains it, K=NAME only the tests whose name contains it inside them.
check: deps
	@$(MAKE) --no-print-directory unit-bins
	@PYTHON=$(PYTHON) sh tests/run.sh --quick $(if $(T),--only '$(T)') $(if $(K),-k '$(K)') $(BUILD)

# Every test: normal build, then ASan + UBSan build (leaks fail too).
test: deps
	@$(MAKE) --no-print-directory unit-bins
	@$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=address,undefined unit-bins
	@PYTHON=$(PYTHON) sh tests/run.sh build build/asan

eval: all
	@$(PYTHON) tests/eval/eval.py --faqbot $(BUILD)/faqbot --faq faq/faq.json
	@$(PYTHON) tests/eval/sets_eval.py --faqbot $(BUILD)/faqbot

bench: all
	@$(MAKE) --no-print-directory $(BUILD)/bench $(BUILD)/xapian_bench
	@$(PYTHON) tests/bench/bench.py --faqbot $(BUILD)/faqbot --bench $(BUILD)/bench \
		--xapian-bench $(BUILD)/xapian_bench
	@$(PYTHON) tests/bench/bench_chat.py --faqbot $(BUILD)/faqbot

$(BUILD)/bench: tests/bench/bench.c $(OBJS) $(HEADERS)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(OBJS) $(LDFLAGS_ALL) $(PKG_LIBS)

# Xapian C++ on the same FAQ and questions, the yardstick for the matcher's speed.
CXX ?= c++
$(BUILD)/xapian_bench: tests/bench/xapian_bench.cc | $(BUILD)/obj
	$(CXX) -std=c++17 -O2 -Wall -Wextra -Werror -o $@ $< \
		$$(pkg-config --cflags --libs xapian-core jansson)

# Soak under faults (default 30 min), then a shorter run under valgrind.
SOAK_SECONDS ?= 1800
soak: all
	@$(PYTHON) tests/soak/soak.py --faqbot $(BUILD)/faqbot --seconds $(SOAK_SECONDS)
	@$(PYTHON) tests/soak/soak.py --faqbot $(BUILD)/faqbot --seconds 60 --valgrind

# Static analysis: cppcheck and clang-tidy (checks in .clang-tidy), zero findings.
lint: deps
	@$(MAKE) --no-print-directory $(BUILD)/gen/stopwords.c $(BUILD)/gen/buildinfo.h
	@echo "lint: cppcheck"
	@cppcheck --std=c11 --enable=warning,style,performance,portability --inline-suppr \
		--error-exitcode=1 --quiet --include=/usr/include/jansson.h -Iinclude src/
	@echo "lint: clang-tidy"
	@clang-tidy --quiet src/*.c -- -std=c11 -Iinclude -I$(BUILD)/gen $(PKG_CFLAGS) \
		>$(BUILD)/clang-tidy.log 2>&1; rc=$$?; grep -v "warnings generated" $(BUILD)/clang-tidy.log; exit $$rc

# Fuzzing (clang's libFuzzer + ASan + UBSan): make fuzz FUZZ_SECONDS=60
FUZZ_TARGETS = faq match telegram matrix config markup mx_crypto idxcache
FUZZ_SECONDS ?= 60

$(BUILD)/fuzz:
	@mkdir -p $@

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(OBJS) $(HEADERS) | $(BUILD)/fuzz
	@echo "FUZZ $@"
	@$(CC) $(CFLAGS_ALL) -Itests/fuzz -fsanitize=fuzzer -o $@ $< $(OBJS) $(LDFLAGS_ALL) $(PKG_LIBS)

fuzz-bins: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)

fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build/clang-fuzz CC=clang \
		SANITIZE=fuzzer-no-link,address,undefined fuzz-bins
	@sh tests/fuzz/run.sh build/clang-fuzz/fuzz $(FUZZ_SECONDS)

# The container image, built and tried with buildah (no Docker engine needed).
docker-test: all
	@PYTHON=$(PYTHON) sh tests/docker/docker_test.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/faqbot
	install -m 755 $(BUILD)/faqbot $(DESTDIR)$(PREFIX)/bin/faqbot
	install -m 644 faq/faq.json faq/faq.schema.json $(DESTDIR)$(PREFIX)/share/faqbot/
	install -d $(DESTDIR)$(PREFIX)/share/faqbot/lexicon
	install -m 644 $(LEXICONS) $(DESTDIR)$(PREFIX)/share/faqbot/lexicon/

clean:
	rm -rf build
