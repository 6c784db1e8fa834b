#!/usr/bin/env bash
# The crash loop at the size named in issue #9: a 100,000-contact broadcast plus live welcome
# traffic while the daemon is killed with SIGKILL at random moments (default 30 kills),
# release binaries. Every knob can be overridden from the environment:
#
#   SOP_CRASHLOOP_CONTACTS=100000 SOP_CRASHLOOP_KILLS=30 SOP_CRASHLOOP_SEED=7 \
#   SOP_CRASHLOOP_MAX_GAP_MS=20000 SOP_CRASHLOOP_WELCOMES_PER_S=20 tests/reliability/crash-loop.sh
#
# It runs the same test as CI (tests/reliability/tests/crash_loop.rs) and prints its counts.
# Expect it to take a while: the daemon's gate paces WeCom calls at the documented
# 10,000 per minute, so 100,000 mass sends alone take more than ten minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
export SOP_CRASHLOOP_CONTACTS="${SOP_CRASHLOOP_CONTACTS:-100000}"
export SOP_CRASHLOOP_KILLS="${SOP_CRASHLOOP_KILLS:-30}"
export SOP_CRASHLOOP_SEED="${SOP_CRASHLOOP_SEED:-7}"
export SOP_CRASHLOOP_MAX_GAP_MS="${SOP_CRASHLOOP_MAX_GAP_MS:-20000}"
export SOP_CRASHLOOP_WELCOMES_PER_S="${SOP_CRASHLOOP_WELCOMES_PER_S:-20}"
export SOP_CRASHLOOP_RELEASE=1
exec cargo test --release -p sop-reliability --test crash_loop -- --nocapture "$@"
