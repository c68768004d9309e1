#!/usr/bin/env bash
# The fault suite (make faults): each tests/faults/test_*.sh puts pgmesh, under a background load of
# four tenants, through one fault (PgBouncer beside it where the comparison says something), asserts
# what a user would check, and records its figures. Runs through tests/integration/run.sh (one
# PostgreSQL with the sample mesh, each case in its own process) and ends with the table of figures,
# also written to $BUILD/faults/figures.md. Usage: BUILD=build tests/faults/run.sh [case ...]
# Env as tests/integration/run.sh; FAULT_SOAK_S (600) is the soak's length, FAULT_OUTAGE_S (30) the
# outage's. Takes about 15 minutes, most of it the soak.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
mkdir -p "$BUILD/faults"
# The commit the binary under test was built from: taken now, before anything can change HEAD.
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
git diff --quiet HEAD -- 2>/dev/null || COMMIT="$COMMIT-dirty"
FAULT_FIGURES=$BUILD/faults/figures.tsv
: > "$FAULT_FIGURES"
export FAULT_FIGURES BUILD
TESTS_DIR=tests/faults TEST_TIMEOUT_S=${TEST_TIMEOUT_S:-900} SUITE_TIMEOUT_S=${SUITE_TIMEOUT_S:-3600} \
    tests/integration/run.sh "$@"
st=$?
{
    echo "pgmesh $COMMIT, $(date -u +'%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, PostgreSQL $("${PGBIN:-/usr/lib/postgresql/15/bin}/postgres" --version | awk '{print $3}'), PgBouncer $(pgbouncer --version 2>/dev/null | head -n 1 | awk '{print $2}')"
    echo
    echo "| case | figure | pgmesh | PgBouncer 1.18 | target | |"
    echo "|---|---|---|---|---|---|"
    awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$FAULT_FIGURES"
} > "$BUILD/faults/figures.md"
echo
cat "$BUILD/faults/figures.md"
exit "$st"
