# shellcheck shell=bash
# Sourced by the bench scripts: a process's CPU time, for per-request costs
# that are steadier than throughput on a small, shared machine.

# A process and its descendants.
tree_pids() {
  echo "$1"
  local c
  for c in $(pgrep -P "$1"); do tree_pids "$c"; done
}

# CPU time (user + system, in clock ticks) of a process and its descendants.
cpu_ticks() {
  local t=0 p v
  for p in $(tree_pids "$1"); do
    v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# Microseconds per clock tick.
tick_us=$((1000000 / $(getconf CLK_TCK)))

# Busy CPU time of the whole machine (all cores, every process and the
# kernel's interrupt work; idle and I/O wait excluded), in clock ticks.
machine_ticks() {
  awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat
}
