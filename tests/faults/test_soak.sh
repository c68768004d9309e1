#!/usr/bin/env bash
# FAULT_SOAK_S (600) seconds of the load of four tenants through pgmesh, with PgBouncer beside it
# under the same load, and a psql connecting through each every second (churn beside the pooled
# clients). A leak too slow for any other case (a few bytes per transaction or per login, a socket
# per hundred logins) shows here. RSS and fds of both poolers are sampled every 10 s.
# Targets: no isolation failures, no failed transaction or psql through pgmesh, pgmesh's fd count
# flat, and its RSS growth from the end of the first minute (half the run if shorter) to the end
# under 4 MiB: by then its buffers, statement caches and malloc arenas have their working size for
# this fixed crowd, and in ten minutes it runs some 5*10^5 transactions and 600 logins, so a leak
# of 16 bytes per transaction or 8 KiB per login crosses the bound while allocator noise does not.
. "$(dirname "$0")/lib.sh"

S=${FAULT_SOAK_S:-600}
RSS_BOUND_KB=4096
mesh_config
mesh_start
bouncer_start
# A think time keeps the two loads to a share of the two cores for the whole run.
load_start mesh mesh --think-ms 5
load_start bouncer bouncer --think-ms 5
load_wait_ok mesh 100 20
load_wait_ok bouncer 100 20
tok=$(mint FR regional_analyst)
samples=$TEST_DIR/soak-samples.tsv
: > "$samples"
churn_mesh_fail=0 churn_bouncer_fail=0 churns=0
start=$(now_ms)
end=$((start + S * 1000))
next_sample=$start
echo "== soak: $S s"
while :; do
    now=$(now_ms)
    [ "$now" -lt "$end" ] || break
    if [ "$now" -ge "$next_sample" ]; then
        printf '%s\t%s\t%s\t%s\t%s\n' $(((now - start) / 1000)) "$(proc_rss_kb "$MESH_PID")" "$(proc_fds "$MESH_PID")" \
            "$(proc_rss_kb "$BOUNCER_PID")" "$(proc_fds "$BOUNCER_PID")" >> "$samples"
        next_sample=$((next_sample + 10000))
    fi
    [ "$(mesh_psql "$tok" -c 'SELECT 1' 2>/dev/null)" = 1 ] || churn_mesh_fail=$((churn_mesh_fail + 1))
    [ "$(bouncer_psql -c 'SELECT 1' 2>/dev/null)" = 1 ] || churn_bouncer_fail=$((churn_bouncer_fail + 1))
    churns=$((churns + 1))
    # One churn a second, however long the two psql took.
    wait_ms=$((start + churns * 1000 - $(now_ms)))
    [ "$wait_ms" -le 0 ] || sleep "$(awk -v m="$wait_ms" 'BEGIN { printf "%.3f", m / 1000 }')"
done
sleep 1 # the last psql's close is read
now=$(now_ms)
printf '%s\t%s\t%s\t%s\t%s\n' $(((now - start) / 1000)) "$(proc_rss_kb "$MESH_PID")" "$(proc_fds "$MESH_PID")" \
    "$(proc_rss_kb "$BOUNCER_PID")" "$(proc_fds "$BOUNCER_PID")" >> "$samples"
echo "samples (s, pgmesh RSS KiB, fds, PgBouncer RSS KiB, fds):"; cat "$samples"

mesh_ok=$(load_get mesh ok) mesh_err=$(load_get mesh errors) mesh_iso=$(load_get mesh isolation_failures)
bouncer_ok=$(load_get bouncer ok) bouncer_err=$(load_get bouncer errors) bouncer_iso=$(load_get bouncer isolation_failures)
load_stop mesh
load_stop bouncer

# col N: the samples' column N (2 pgmesh RSS, 3 pgmesh fds, 4 PgBouncer RSS, 5 PgBouncer fds)
first() { head -n 1 "$samples" | cut -f "$1"; }
last() { tail -n 1 "$samples" | cut -f "$1"; }
colmax() { cut -f "$1" "$samples" | sort -n | tail -n 1; }
settled_at=$((S >= 120 ? 60 : S / 2))
settled() { awk -F'\t' -v t="$settled_at" -v c="$1" '$1 >= t { print $c; exit }' "$samples"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
mesh_growth=$(($(last 2) - $(settled 2))) bouncer_growth=$(($(last 4) - $(settled 4)))

C="Soak ${S} s"
figure "$C" "transactions" "$mesh_ok" "$bouncer_ok" "-" "-"
verdict=pass; [ "$mesh_err" = 0 ] && [ "$mesh_iso" = 0 ] || verdict=FAIL
figure "$C" "failed transactions / isolation failures" "$mesh_err / $mesh_iso" "$bouncer_err / $bouncer_iso" "0 / 0" "$verdict"
verdict=pass; [ "$churn_mesh_fail" = 0 ] || verdict=FAIL
figure "$C" "churn: psql failed of $churns" "$churn_mesh_fail" "$churn_bouncer_fail" "0" "$verdict"
figure "$C" "RSS start / at ${settled_at} s / end / max (MiB)" \
    "$(mib "$(first 2)") / $(mib "$(settled 2)") / $(mib "$(last 2)") / $(mib "$(colmax 2)")" \
    "$(mib "$(first 4)") / $(mib "$(settled 4)") / $(mib "$(last 4)") / $(mib "$(colmax 4)")" "-" "-"
verdict=pass; [ "$mesh_growth" -lt "$RSS_BOUND_KB" ] || verdict=FAIL
figure "$C" "RSS growth from ${settled_at} s to the end (KiB)" "$mesh_growth" "$bouncer_growth" "< $RSS_BOUND_KB" "$verdict"
# A psql of the churn may be open at a sample: one descriptor either way is not a trend.
verdict=pass; [ "$(last 3)" -le "$(($(first 3) + 1))" ] && [ "$(colmax 3)" -le "$(($(first 3) + 2))" ] || verdict=FAIL
figure "$C" "fds start / end / max" "$(first 3) / $(last 3) / $(colmax 3)" "$(first 5) / $(last 5) / $(colmax 5)" "flat" "$verdict"

[ "$mesh_err" = 0 ] || fail "$mesh_err transactions failed through pgmesh (last: $(load_get mesh last_error))"
[ "$churn_mesh_fail" = 0 ] || fail "$churn_mesh_fail of $churns psql through pgmesh failed"
[ "$mesh_growth" -lt "$RSS_BOUND_KB" ] || fail "pgmesh's RSS grew $mesh_growth KiB from $settled_at s to the end"
[ "$(last 3)" -le "$(($(first 3) + 1))" ] || fail "pgmesh's fds went from $(first 3) to $(last 3)"
[ "$(colmax 3)" -le "$(($(first 3) + 2))" ] || fail "pgmesh's fds reached $(colmax 3) from $(first 3)"
mesh_stop
echo ok
