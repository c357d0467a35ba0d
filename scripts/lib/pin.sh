# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables are for the scripts that source this
# Sourced by the bench scripts before they start anything. With BENCH_PIN=1
# the proxies run on cores of their own (the upper half of the cores this
# script may use) and the load generator and the server on the rest, as a
# proxy deployed on its own host or cores would. Without it every process
# shares every core, and throughput measures how much CPU each proxy takes
# from the load generator and the server.
on_load=()
on_proxy=()
pinned=0
load_n=$(nproc)
proxy_n=$(nproc)
pin_note="every process shares the $(nproc) cores"
if [ "${BENCH_PIN:-0}" = 1 ]; then
  read -r load_cpus proxy_cpus load_n proxy_n < <(python3 -c '
import os
cpus = sorted(os.sched_getaffinity(0))
half = len(cpus) // 2
print(",".join(map(str, cpus[:half])) or "-", ",".join(map(str, cpus[half:])), half, len(cpus) - half)')
  if [ "$load_cpus" = - ]; then
    echo "BENCH_PIN=1 needs at least two cores" >&2
    exit 1
  fi
  on_load=(taskset -c "$load_cpus")
  on_proxy=(taskset -c "$proxy_cpus")
  pinned=1
  pin_note="pinned: the proxies on CPU $proxy_cpus, the load generator and the server on CPU $load_cpus"
fi
