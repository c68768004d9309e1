# TPS against clients for bench/run.sh: one panel per protocol mode, one line per target.
# Called with -e "modes='simple extended prepared'; dir='...'; out='x.png'; heading='...'"; reads
# dir/chart-MODE.dat (a header row naming the targets, then clients and one TPS column per target).
set terminal pngcairo size 1500,560 font "sans,10"
set output out
set datafile missing "NaN"
set key outside bottom center horizontal autotitle columnheader
set logscale x 2
set xlabel "pgbench clients"
set ylabel "transactions per second"
set yrange [0:*]
set grid
n = words(modes)
set multiplot layout 1, n title heading
do for [i = 1:n] {
    m = word(modes, i)
    f = dir . "/chart-" . m . ".dat"
    set title "select-only, -M " . m
    stats f using 1 nooutput
    cols = STATS_columns
    # lc c: a target keeps its colour in a panel where an earlier column has no points
    plot for [c = 2:cols] f using 1:c with linespoints lw 2 pt 7 lc c
}
unset multiplot
