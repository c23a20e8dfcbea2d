#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs every test.
#
#   bash Samples/test.sh [--long] [--no-sanitize-engine] [--sanitize-engine-all] [--sanitize] [--no-lint]
#                        [--scratch-path DIR] [-- SWIFT-TEST-ARGS...]
#
#   --long          also run long tests (sets VMIMG_LONG=1: fuzzing, big images)
#   (default)       before the normal pass, the engine's suites under ThreadSanitizer, then under
#                   AddressSanitizer, built from Sanitize/ (engine modules only, .build-tsan-engine,
#                   .build-asan-engine), without the two longest randomized suites (RandomWorkload,
#                   HeavyEngineTests, which the normal pass runs); see Sanitize/Package.swift
#   --sanitize-engine-all   the same with every engine suite
#   --no-sanitize-engine    skip the sanitizer passes (quick local runs)
#   --sanitize      after the normal pass, also run the whole package's engine tests under ASan and
#                   TSan (.build-asan, .build-tsan; VMIMG_SANITIZE_FILTER or -- ARGS pick tests; slow)
#   --no-lint       skip `swift format lint --strict` (run only when .swift-format exists)
#   --scratch-path  build directory (default .build), for parallel worktrees
#   -- ARGS         passed to `swift test`, e.g. -- --filter QCow2FormatTests
#
# The exit status is swift test's (or the lint's / sanitizer pass's when they fail and the tests
# pass). swift test's output is not filtered: CI reads its closing line.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

long=0
sanitize=0
engine_sanitize=1
engine_skip='RandomWorkload|HeavyEngineTests'
lint=1
scratch=()
test_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --long) long=1 ;;
        --sanitize) sanitize=1 ;;
        --sanitize-engine) engine_sanitize=1 ;;  # the default; kept for old command lines
        --sanitize-engine-all) engine_sanitize=1; engine_skip='' ;;
        --no-sanitize-engine) engine_sanitize=0 ;;
        --no-lint) lint=0 ;;
        --scratch-path) scratch=(--scratch-path "$2"); shift ;;
        --) shift; test_args=("$@"); break ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "test.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

step() { printf '\n== %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------------------
# Only what is missing is installed; `apt-get update` only when a package is unknown to apt.
# The guest's kernel and busybox are not installed: Samples/build-guest.sh unpacks them into a cache.
# chromium + chromium-driver: the console's browser test (Tests/ConsoleTests/browser_test.py).
packages=(qemu-utils qemu-system-x86 zlib1g-dev libzstd-dev libdeflate-dev libisal-dev e2fsprogs cpio chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    step "installing ${missing[*]}"
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "test.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    for p in "${missing[@]}"; do
        if ! apt-cache show "$p" >/dev/null 2>&1; then
            "${sudo[@]}" apt-get update -qq
            break
        fi
    done
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Python modules: Selenium (console browser test), jsonschema + PyYAML (OpenAPI check) ----------
if ! python3 -c 'import selenium, jsonschema, yaml' 2>/dev/null; then
    step "pip install selenium jsonschema pyyaml"
    python3 -m pip install -q selenium jsonschema pyyaml \
        || python3 -m pip install -q --break-system-packages selenium jsonschema pyyaml
fi

# --- Test guest (cached; built here so no test spends its time limit on it) ---------------------
step "test guest"
bash Samples/build-guest.sh

# --- Build and test ------------------------------------------------------------------------------
export VMIMG_LONG=$long
status=0

if [[ $lint -eq 1 && -f .swift-format ]]; then
    step "swift format lint --strict"
    swift format lint --strict -r Sources Tests || status=$?
fi

step "swift build"
swift build "${scratch[@]}" --build-tests

# The README's main job runs here too (issue 5: a real TCG boot, the guest's file list before and after);
# before swift test, so swift test's closing line stays the last one CI reads.
if [[ ${#test_args[@]} -eq 0 ]]; then
    step "walkthrough (the main job)"
    build_dir=${scratch[1]:-.build}
    [[ $build_dir == /* ]] || build_dir="$PWD/$build_dir"
    VMIMG_BIN="$build_dir/debug/vmimg" bash Samples/walkthrough.sh || status=$?
fi

# The engine under the sanitizers (issue 6), before swift test so its closing line stays the last.
# Sanitize/ is a nested package: the root's engine products (QCow2Format, BlockIO, Codecs, QCow2,
# ImageKit, TestSupport) and its engine suites (symbolic links), without NIO, Hummingbird, GRDB or
# the CLI, so the instrumented build takes minutes, not the ~45 of a whole-package --sanitize pass.
if [[ $engine_sanitize -eq 1 && ${#test_args[@]} -eq 0 ]]; then
    build_dir=${scratch[1]:-.build}
    [[ $build_dir == /* ]] || build_dir="$PWD/$build_dir"
    skip_args=()
    [[ -n $engine_skip ]] && skip_args=(--skip "$engine_skip")
    for sanitizer in thread address; do
        dir=.build-${sanitizer:0:1}san-engine
        step "engine tests under --sanitize=$sanitizer (Sanitize/, --scratch-path $dir, skipping '${engine_skip:-nothing}')"
        started=$SECONDS
        san_status=0
        swift build --package-path Sanitize --scratch-path "$dir" --sanitize="$sanitizer" --build-tests ||
            san_status=$?
        built=$SECONDS
        if [[ $san_status -eq 0 ]]; then
            # The crash tests run the normal vmimg; the sanitizer watches the test process.
            VMIMG_BIN="$build_dir/debug/vmimg" SWIFT_BACKTRACE=enable=no \
                LSAN_OPTIONS="suppressions=$PWD/Samples/lsan.supp" \
                timeout --kill-after=30 "${VMIMG_ENGINE_SANITIZE_TIMEOUT:-900}" \
                swift test --package-path Sanitize --scratch-path "$dir" --sanitize="$sanitizer" --skip-build \
                "${skip_args[@]}" || san_status=$?
        fi
        echo "engine sanitize=$sanitizer: build $((built - started)) s, tests $((SECONDS - built)) s, status $san_status"
        [[ $san_status -ne 0 ]] && status=$san_status
    done
fi

step "swift test"
# Keep CI under 40 minutes on 2 cores: a hung test is killed after 35.
test_status=0
timeout --kill-after=60 "${VMIMG_TEST_TIMEOUT:-2100}" \
    swift test "${scratch[@]}" --skip-build "${test_args[@]}" || test_status=$?
[[ $test_status -ne 0 ]] && status=$test_status

if [[ $sanitize -eq 1 ]]; then
    # AddressSanitizer, then ThreadSanitizer, each in its own scratch path (.build-asan, .build-tsan) so
    # the normal build stays cached. Default subset: the engine's suites, which finish in minutes
    # under both; `-- ARGS` (e.g. `-- --filter NBDTests`) or VMIMG_SANITIZE_FILTER choose others.
    sanitize_args=("${test_args[@]}")
    [[ ${#sanitize_args[@]} -eq 0 ]] &&
        sanitize_args=(--filter "${VMIMG_SANITIZE_FILTER:-QCow2FormatTests|QCow2Tests|CodecsTests}")
    for sanitizer in address thread; do
        dir=.build-${sanitizer:0:1}san
        step "swift test --sanitize=$sanitizer (--scratch-path $dir ${sanitize_args[*]})"
        started=$SECONDS
        san_status=0
        swift build --scratch-path "$dir" --sanitize="$sanitizer" --build-tests || san_status=$?
        built=$SECONDS
        if [[ $san_status -eq 0 ]]; then
            # Swift's backtracer would race the sanitizer's own report on a crash; XCTest's own leaks
            # are suppressed (Samples/lsan.supp).
            SWIFT_BACKTRACE=enable=no LSAN_OPTIONS="suppressions=$PWD/Samples/lsan.supp" timeout --kill-after=60 "${VMIMG_SANITIZE_TIMEOUT:-1200}" \
                swift test --scratch-path "$dir" --sanitize="$sanitizer" --skip-build "${sanitize_args[@]}" ||
                san_status=$?
        fi
        echo "sanitize=$sanitizer: build $((built - started)) s, tests $((SECONDS - built)) s, status $san_status"
        [[ $san_status -ne 0 && $status -eq 0 ]] && status=$san_status
    done
fi

exit "$status"
