#!/usr/bin/env bash
# The broker's scale curves (issue 18, docs/benchmarks.md#scale-curves), drawn:
# each a gnuplot PNG in docs/curves/ beside its data file, all from
# bench/broker_bench runs (its --json samples), one point per run:
#   watchers.dat/png  watchers 1 -> 256: batched credentials/s delivered to
#                     each watcher, and p99 publish -> watcher at --rate
#   live.dat/png      live credentials 10k -> 10M: broker RSS per credential
#                     and the snapshot time of a new watcher
#   rate.dat/png      publish rate 1k -> 50k/s (the library's Publisher, 8
#                     watchers): p50/p99 publish -> watcher and broker CPU
#                     per credential
# Every point records whether the machine was quiet (broker_bench's probe);
# plot titles say "NOISY" when any point of the curve was not.
#
# Usage: scripts/scale-curves.sh [--quick] [--out DIR]
#   --quick  few, small points (a smoke test of the script, figures meaningless)
# Needs a build (./scripts/build.sh) and gnuplot (scripts/setup.sh installs
# gnuplot-nox). Takes about 8 minutes on 2 cores; run it on a quiet machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bench=$root/build/bench/broker_bench
out=$root/docs/curves
quick=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) quick=1 ;;
    --out) out=$2; shift ;;
    *) echo "usage: $0 [--quick] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $bench ]] || { echo "no $bench: run ./scripts/build.sh first" >&2; exit 2; }
command -v gnuplot >/dev/null || { echo "gnuplot missing: apt-get install gnuplot-nox" >&2; exit 2; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ((quick)); then
  watchers=(1 4) live=(10000 20000) rates=(1000 2000) seconds=1 bulk=10000 probe=0
else
  watchers=(1 4 16 64 256) live=(10000 100000 1000000 3000000 10000000)
  rates=(1000 5000 10000 20000 50000) seconds=5 bulk=200000 probe=3
fi

# point NAME ARGS...: one broker_bench run; its samples in $work/NAME.json.
point() {
  local name=$1
  shift
  echo "== $name: broker_bench $*" >&2
  "$bench" --runs 1 --cpu-seconds "$probe" --json "$work/$name.json" "$@" >"$work/$name.out" 2>&1 ||
    { cat "$work/$name.out" >&2; echo "broker_bench failed for $name" >&2; exit 1; }
}
# value NAME KEY: the sample (first run) of KEY, "nan" for a lost one.
value() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d.get(sys.argv[2],[None])[0]; print("nan" if v is None else v)' \
    "$work/$1.json" "$2"
}
machine() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["machine"].replace(" ", "-"))' "$work/$1.json"; }

stamp="$(date -u +%Y-%m-%d) $(uname -n), $(nproc) CPUs"
noisy() { grep -qv '^quiet$' "$1" && echo " (NOISY machine: figures not to be quoted)" || true; }

# Watchers.
{
  echo "# watchers  delivered_per_s_each  p99_ms_at_5000_per_s  machine    ($stamp)"
  for w in "${watchers[@]}"; do
    point "w$w" --watchers "$w" --publishers library --rate 5000 --seconds "$seconds" --total "$bulk"
    echo "$w $(value "w$w" delivered_per_s) $(python3 -c "print($(value "w$w" library_latency_p99_us)/1000)") $(machine "w$w")"
  done
} >"$out/watchers.dat"
# Live credentials.
{
  echo "# live  rss_bytes_per_credential  snapshot_seconds  machine    ($stamp)"
  for n in "${live[@]}"; do
    point "l$n" --watchers 1 --publishers library --rate 1000 --seconds 1 --total "$n"
    echo "$n $(value "l$n" rss_bytes_per_credential) $(value "l$n" snapshot_seconds) $(machine "l$n")"
  done
} >"$out/live.dat"
# Publish rate.
{
  echo "# rate  p50_ms  p99_ms  broker_cpu_us_per_credential  machine    ($stamp)"
  for r in "${rates[@]}"; do
    point "r$r" --watchers 8 --publishers library --rate "$r" --seconds "$seconds" --total 20000
    p50=$(value "r$r" library_latency_p50_us) p99=$(value "r$r" library_latency_p99_us)
    echo "$r $(python3 -c "print($p50/1000, $p99/1000)") $(value "r$r" library_broker_cpu_us_per_credential) $(machine "r$r")"
  done
} >"$out/rate.dat"

for f in watchers live rate; do awk '!/^#/ {print $NF}' "$out/$f.dat" >"$work/$f.machine"; done
gnuplot <<EOF
set terminal pngcairo size 1040,560 noenhanced
set grid
set key top left
set logscale x 2
set output "$out/watchers.png"
set title "Watchers: credentials/s delivered to each (batches), and p99 at 5,000/s$(noisy "$work/watchers.machine")\n$stamp"
set xlabel "watchers"
set ylabel "credentials/s to each watcher"
set y2label "p99 publish -> watcher, ms"
set ytics nomirror
set y2tics
plot "$out/watchers.dat" using 1:2 with linespoints title "delivered/s each", \
     "" using 1:3 axes x1y2 with linespoints title "p99 ms at 5,000/s"
set logscale x 10
set output "$out/live.png"
set title "Live credentials: broker RSS per credential and snapshot time$(noisy "$work/live.machine")\n$stamp"
set xlabel "live credentials"
set ylabel "bytes RSS per credential"
set y2label "snapshot to a new watcher, s"
plot "$out/live.dat" using 1:2 with linespoints title "RSS bytes/credential", \
     "" using 1:3 axes x1y2 with linespoints title "snapshot s"
set output "$out/rate.png"
set title "Publish rate (library Publisher, 8 watchers): latency and broker CPU$(noisy "$work/rate.machine")\n$stamp"
set xlabel "credentials/s"
set ylabel "publish -> watcher, ms"
set y2label "broker CPU, us per credential"
plot "$out/rate.dat" using 1:2 with linespoints title "p50 ms", \
     "" using 1:3 with linespoints title "p99 ms", \
     "" using 1:4 axes x1y2 with linespoints title "CPU us/credential"
EOF
echo "curves in $out: watchers.png live.png rate.png (data beside them)"
