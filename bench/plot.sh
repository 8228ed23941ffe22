#!/usr/bin/env bash
# Plots the benchmark CSVs (written by ztseg_bench_xdp/net --csv) into one PNG.
# Usage: bench/plot.sh DATA_DIR OUT.png   (needs gnuplot; Debian gnuplot-nox)
set -euo pipefail
data=${1:?usage: plot.sh DATA_DIR OUT.png}
png=${2:?usage: plot.sh DATA_DIR OUT.png}
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not installed (apt-get install gnuplot-nox)" >&2; exit 1; }

# One "x y" file per series, sorted by x.
series() {  # csv filter-awk-condition x-col y-col out
  awk -F, -v OFS=' ' "NR > 1 && ($2) { print \$$3, \$$4 }" "$1" | sort -n > "$5"
}
filters=""
if [ -f "$data/net.csv" ]; then
  for f in $(awk -F, 'NR > 1 { print $1 }' "$data/net.csv" | awk '!seen[$0]++'); do
    series "$data/net.csv" "\$1 == \"$f\" && \$3 == 1" 2 4 "$data/bulk-$f.dat"
    series "$data/net.csv" "\$1 == \"$f\" && \$3 == 1" 2 5 "$data/conn-$f.dat"
    series "$data/net.csv" "\$1 == \"$f\" && \$3 == 1 && \$8 > 0" 2 8 "$data/flood-$f.dat"
    filters="$filters $f"
  done
fi
xdp_series=""
if [ -f "$data/xdp.csv" ]; then
  # Policy-size sweep (no extra identity prefixes) and the identity-prefix sweep (10 rules).
  for s in "ztseg syn" "ztseg established" "ztseg unlabeled" "xdp-filter syn" "XDP_PASS syn"; do
    set -- $s
    name="$1-$2"
    series "$data/xdp.csv" "\$1 == \"$1\" && \$5 == \"$2\" && \$3 == 0" 2 6 "$data/xdp-$name.dat"
    [ -s "$data/xdp-$name.dat" ] && xdp_series="$xdp_series $name"
    series "$data/xdp.csv" "\$1 == \"$1\" && \$5 == \"$2\" && \$2 == 10" 4 6 "$data/pfx-$name.dat"
  done
fi

# The per-packet panels only when the XDP benchmark ran (BENCH_ONLY=net has none).
xdp_plots=""
if [ -n "$xdp_series" ]; then
  xdp_plots='set title "per-packet cost vs policy size (BPF_PROG_TEST_RUN)"; set xlabel "rules"; set ylabel "ns/packet"
plot for [s in xs] "'"$data"'/xdp-".s.".dat" using 1:2 title s
set title "per-packet cost vs identity prefixes (10 rules)"; set xlabel "identity prefixes"
plot for [s in xs] "'"$data"'/pfx-".s.".dat" using 1:2 title s'
fi

gnuplot <<EOF
set terminal pngcairo size 1500,1000 font "sans,10" noenhanced
set output "$png"
set multiplot layout 2,3 title "ztseg vs iptables, nftables, xdp-filter (same policy, same run)"
set logscale x
set grid
set key top right font ",8"
set style data linespoints
filters = "$filters"
xs = "$xdp_series"
set title "(a) bulk TCP through veth"; set xlabel "rules"; set ylabel "Gbit/s"; set yrange [0:*]
plot for [f in filters] "$data/bulk-".f.".dat" using 1:2 title f
set title "(b) new TCP connections"; set ylabel "connections/s"
plot for [f in filters] "$data/conn-".f.".dat" using 1:2 title f
set title "(c) unlabeled flood: drop efficiency"; set ylabel "packets dropped per softirq CPU-second"
plot for [f in filters] "$data/flood-".f.".dat" using 1:2 title f
$xdp_plots
unset multiplot
EOF
