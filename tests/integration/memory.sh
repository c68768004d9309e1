# pgmesh's own memory for the streaming tests, against issue 4's budget: a stream of any length
# must leave pgmesh's peak resident set (VmHWM, which the kernel keeps, so nothing is missed
# between samples) under 32 MiB. Sourced by test_*.sh after lib.sh, once mesh_start has run.
MESH_HWM_LIMIT_KB=$((32 * 1024))

# mesh_mem_kb VmHWM|VmRSS: that line of /proc/$MESH_PID/status, in kB.
mesh_mem_kb() {
    awk -v key="$1:" '$1 == key { print $2 }' "/proc/$MESH_PID/status"
}

# assert_mesh_hwm WHAT: prints the peak and current figures and fails over the budget. A
# sanitizer build (shadow memory, quarantined frees) is far above any such budget by design, so
# there the figures are printed only.
assert_mesh_hwm() {
    local hwm rss
    hwm=$(mesh_mem_kb VmHWM)
    rss=$(mesh_mem_kb VmRSS)
    [ -n "$hwm" ] || fail "no memory figures for pgmesh (pid $MESH_PID): has it exited?"
    echo "pgmesh after $1: VmHWM $hwm kB, VmRSS $rss kB"
    if grep -q libasan "/proc/$MESH_PID/maps"; then
        echo "  (sanitizer build: not compared with the $MESH_HWM_LIMIT_KB kB budget)"
        return 0
    fi
    [ "$hwm" -lt "$MESH_HWM_LIMIT_KB" ] ||
        fail "pgmesh peak RSS $hwm kB after $1, over the $MESH_HWM_LIMIT_KB kB budget"
}
