#!/usr/bin/env bash
# bench/hotpath.sh: issue 13's "no hot-path regression" check, one method
# for both trees. It checks out 8fc18ad (end of round 1) in a temporary
# worktree, applies hotpath-8fc18ad.patch there (uncommitted: the same
# bench/internal/measure wrapper, every counted row's operation wrapped in
# measure.Op, BenchmarkShadowlaneQPS and BenchmarkHTTPEntry as in this
# tree), builds the test binaries of both trees and counts, per row,
# instructions inside measure.Op under callgrind
# (--toggle-collect='*measure.Op', GOGC=off, GODEBUG=asyncpreemptoff=1),
# (Ir(N2) - Ir(N1)) / (N2 - N1), the median of REPS runs; allocs/op from
# -benchmem. Prints a markdown table.
#
#   bash bench/hotpath.sh            # REPS=3 N1=2000 N2=12000 JOBS=2
#   ONLY='XRate|Sentinel' REPS=1 bash bench/hotpath.sh   (rows matching an ERE;
#                                   only their packages are built)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
OLD=${OLD:-8fc18ad} REPS=${REPS:-3} N1=${N1:-2000} N2=${N2:-12000} JOBS=${JOBS:-2}
W=$(mktemp -d)
git worktree add -q --detach "$W/old" "$OLD"
trap 'git worktree remove --force "$W/old"; rm -rf "$W"' EXIT
(cd "$W/old" && git apply "$root/bench/hotpath-8fc18ad.patch")
ROWS='foundation ^BenchmarkGin$/^bare$
foundation ^BenchmarkGin$/^shadowlane$/^unmarked$
foundation ^BenchmarkGin$/^shadowlane$/^unmarked-with-app-baggage$
foundation ^BenchmarkGRPCUnaryServer$/^bare$
foundation ^BenchmarkGRPCUnaryServer$/^shadowlane$/^unmarked$
foundation ^BenchmarkGRPCUnaryServer$/^shadowlane$/^unmarked-server-ctx$
foundation ^BenchmarkGRPCUnaryServer$/^shadowlane$/^unmarked-with-app-baggage$
foundation ^BenchmarkGRPCUnaryServer$/^shadowlane$/^unmarked-transport-ctx$
foundation ^BenchmarkHTTPEntry$/^few-headers$/^bare$
foundation ^BenchmarkHTTPEntry$/^few-headers$/^shadowlane-internal$/^unmarked$
foundation ^BenchmarkHTTPEntry$/^few-headers$/^shadowlane-edge$/^unmarked$
foundation ^BenchmarkHTTPEntry$/^browser-headers$/^shadowlane-internal$/^unmarked$
foundation ^BenchmarkHTTPEntry$/^browser-headers$/^shadowlane-edge$/^unmarked$
redis ^BenchmarkHookOnly$/^GET$/^bare$
redis ^BenchmarkHookOnly$/^GET$/^unmarked-guard$
redis ^BenchmarkHookOnly$/^SET$/^unmarked-guard$
redis ^BenchmarkHookOnly$/^GET-session$/^unmarked-guard$
redis ^BenchmarkHookOnly$/^GET$/^unmarked-noguard$
sql ^BenchmarkGuardUnmarked$
sql ^BenchmarkRewriteHit$
limiter ^BenchmarkShadowlaneQPS$/^serial$
limiter ^BenchmarkShadowlane$/^serial$
limiter ^BenchmarkXRate$/^serial$
limiter ^BenchmarkSentinel$/^serial$
messaging ^BenchmarkConsume$/^kafka$/^bare$
messaging ^BenchmarkConsume$/^kafka$/^unmarked$
messaging ^BenchmarkConsume$/^amqp$/^bare$
messaging ^BenchmarkConsume$/^amqp$/^unmarked$
messaging ^BenchmarkConsume$/^nats$/^bare$
messaging ^BenchmarkConsume$/^nats$/^unmarked$'
ROWS=$(printf '%s\n' "$ROWS" | grep -E -- "${ONLY:-.}")

echo "building..." >&2 # the packages of the rows selected
pkgs=$(printf '%s\n' "$ROWS" | cut -d' ' -f1 | sort -u)
for t in old new; do
	d=$root
	[ $t = old ] && d=$W/old
	mkdir -p "$W/$t"
	(cd "$d/bench" && for p in $pkgs; do nice go test -c -o "$W/$t/$p.test" "./$p"; done)
done

# count TREE PKG ROW writes "TREE|ROW|median Ir/op|runs|allocs/op" to $W/out.
count() {
	local t=$1 p=$2 row=$3 bin="$W/$1/$2.test" d vals=() r n a b allocs
	d=$(mktemp -d -p "$W")
	for r in $(seq "$REPS"); do
		for n in "$N1" "$N2"; do
			(cd "$d" && GOGC=off GODEBUG=asyncpreemptoff=1 nice valgrind --tool=callgrind --toggle-collect='*measure.Op' \
				--callgrind-out-file="$d/cg.$n" "$bin" -test.run='^$' -test.bench="$row" -test.benchtime="${n}x" >/dev/null 2>&1) &
		done
		wait
		a=$(awk '/^totals:/ {print $2}' "$d/cg.$N1")
		b=$(awk '/^totals:/ {print $2}' "$d/cg.$N2")
		vals+=("$(awk -v a="${a:-0}" -v b="${b:-0}" -v n1="$N1" -v n2="$N2" 'BEGIN{printf "%.1f", (b-a)/(n2-n1)}')")
	done
	allocs=$(cd "$d" && "$bin" -test.run='^$' -test.bench="$row" -test.benchtime=3000x -test.benchmem 2>/dev/null |
		awk '{for (i=1;i<NF;i++) if ($(i+1)=="allocs/op") print $i}')
	echo "$t|$row|$(printf '%s\n' "${vals[@]}" | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}')|${vals[*]}|${allocs:--}" >>"$W/out"
	rm -rf "$d"
}
export -f count
export W REPS N1 N2
printf '%s\n' "$ROWS" | while read -r p row; do echo "old $p $row"; echo "new $p $row"; done |
	xargs -P "$JOBS" -L1 bash -c 'count "$0" "$1" "$2"'

echo "| row | 8fc18ad Ir/op | $(git rev-parse --short HEAD) Ir/op | change | allocs/op (old/new) |"
echo "|---|---:|---:|---:|---|"
printf '%s\n' "$ROWS" | while read -r p row; do
	o=$(awk -F'|' -v r="$row" '$1=="old" && $2==r' "$W/out")
	n=$(awk -F'|' -v r="$row" '$1=="new" && $2==r' "$W/out")
	oi=$(cut -d'|' -f3 <<<"$o") ni=$(cut -d'|' -f3 <<<"$n")
	ch=$(awk -v a="$oi" -v b="$ni" 'BEGIN{ if (a+0 >= 1) printf "%+.1f%%", (b-a)/a*100; else print "-" }')
	echo "| \`$row\` | $oi ($(cut -d'|' -f4 <<<"$o")) | $ni ($(cut -d'|' -f4 <<<"$n")) | $ch | $(cut -d'|' -f5 <<<"$o") / $(cut -d'|' -f5 <<<"$n") |"
done
