#!/usr/bin/env bash
# bench/results.sh writes bench/RESULTS.md: every comparison of issue 13
# side by side in one run, as instructions per operation (callgrind; exact
# and repeatable on a shared, noisy machine) and as the median ns/op of
# ROUNDS timing rounds that alternate between the rows of a comparison
# (A/B/A/B), with allocations per operation.
#
#   bash bench/results.sh                 # all comparisons
#   ONLY='grpc|sql-' bash bench/results.sh   # comparisons whose id matches the awk regex
#   ROUNDS=7 BENCHTIME=500ms JOBS=2 bash bench/results.sh   (JOBS comparisons at once)
#
# Rows with N1 = 0 are timed only (callgrind costs minutes per run on a
# loaded machine, so it is kept to the rows that carry a goal).
#
# Instructions per op: the benchmark runs twice under
# valgrind --tool=callgrind, with N1 and N2 iterations, collecting only
# inside bench/internal/measure.Op, which wraps one operation of each loop
# iteration (--toggle-collect='*measure.Op'; the stack is grown before the
# loop, GOGC=off); (Ir(N2) - Ir(N1)) / (N2 - N1) cancels setup and
# start-up. GODEBUG=asyncpreemptoff=1 keeps callgrind clear of Go's
# preemption signals. Without valgrind the column says "n/a". Benchmarks
# that need a service (Redis) skip when it is down, and their rows say so.
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${ROUNDS:-5}
BENCHTIME=${BENCHTIME:-200ms}
ONLY=${ONLY:-}
OUT=${OUT:-RESULTS.md}
if [ -n "${WORK:-}" ]; then
	mkdir -p "$WORK" # kept; test binaries already there are reused
else
	WORK=$(mktemp -d)
	trap 'rm -rf "$WORK"' EXIT
fi

# id|title|package|benchmark path|N1|N2|how   (rows of one id form one
# table; the first row with a count is the baseline of the ratio column).
# how says what callgrind counts: "measured", the instructions inside
# measure.Op (one operation; the benchmark's own closures are not a
# reliable toggle: the toggle flips twice when a closure calls another
# closure of the same function, and a stack copy inside a toggled function
# left collection switched the wrong way: rows of 0 and 7 instructions,
# rewrites below their parser); "whole", the whole program with the
# default GOGC, start-up cancelled by the N1/N2 difference (for
# BenchmarkRewriterMiss, whose Rewriter runs work outside the measured
# closure). Rows with N1 = 0 are timed only. The cold SQL sub-benchmarks
# (bench/sqlrewrite) first run their operation once, uncounted, on a
# goroutine pinned to its OS thread (settle): the first operation's
# one-time protobuf and libpg_query thread initialisation, partly counted
# at N1, had moved the PostgreSQL select parser between 214k and 253k per
# op; pinned and warmed, 3 runs agree within 0.1%.

# cold ID TITLE DIALECT N2 STATEMENT...: the rows of a cold-rewrite table,
# per statement the bare parser, the cold rewrite (both measured) and,
# unless the statement is followed by "-", the Rewriter's full miss (timed
# only; "=whole" after the statement: counted whole).
cold() {
	local id=$1 title=$2 d=$3 n2=$4 st s
	shift 4
	for st in "$@"; do
		s=${st%[=-]*}
		echo "$id|$title|sqlrewrite|BenchmarkParse/$d/$s|20|$n2|measured"
		title=""
		echo "$id||sqlrewrite|BenchmarkRewriteCold/$d/$s|20|$n2|measured"
		case $st in
		*-) ;;
		*=whole) echo "$id||sqlrewrite|BenchmarkRewriterMiss/$d/$s|20|320|whole" ;;
		*) echo "$id||sqlrewrite|BenchmarkRewriterMiss/$d/$s|0|0|" ;;
		esac
	done
}

SPEC="
$(cold sql-mysql 'Cold SQL rewrite, MySQL (TiDB parser)' mysql 1020 select join=whole upsert update_join)
$(cold sql-postgres 'Cold SQL rewrite, PostgreSQL (pg_query)' postgres 220 select join upsert update_from)
$(cold sql-sqlite 'Cold SQL rewrite, SQLite (own parser; the bare parser is the analysis, Rewrite with a nil rename; counted like the other dialects)' sqlite 1020 select- join- upsert- update_from-)
"'
cache-zipf10k|Statement cache, Zipf 1.01 over 10k statements, 4096 entries (hit% in the last column)|cache|BenchmarkCache/zipf-10k/golang-lru|2000|12000|measured
cache-zipf10k||cache|BenchmarkCache/zipf-10k/shadowlane|2000|12000|measured
cache-zipf10k||cache|BenchmarkCache/zipf-10k/otter|0|0
cache-zipf10k||cache|BenchmarkCache/zipf-10k/ristretto|0|0
cache-zipf100k|Statement cache, Zipf 1.01 over 100k statements, 4096 entries|cache|BenchmarkCache/zipf-100k/golang-lru|0|0
cache-zipf100k||cache|BenchmarkCache/zipf-100k/shadowlane|0|0
cache-zipf100k||cache|BenchmarkCache/zipf-100k/otter|0|0
cache-zipf100k||cache|BenchmarkCache/zipf-100k/ristretto|0|0
cache-uniform|Statement cache, uniform over 10k statements, 4096 entries|cache|BenchmarkCache/uniform-10k/golang-lru|0|0
cache-uniform||cache|BenchmarkCache/uniform-10k/shadowlane|0|0
cache-uniform||cache|BenchmarkCache/uniform-10k/otter|0|0
cache-uniform||cache|BenchmarkCache/uniform-10k/ristretto|0|0
cache-parallel|Statement cache, parallel hits on 1000 resident statements (timing only)|cache|BenchmarkCacheHitParallel/golang-lru|0|0
cache-parallel||cache|BenchmarkCacheHitParallel/shadowlane|0|0
cache-parallel||cache|BenchmarkCacheHitParallel/otter|0|0
cache-parallel||cache|BenchmarkCacheHitParallel/ristretto|0|0
sql-hit|SQL cache hit and unmarked guard (SQLite dialect)|sql|BenchmarkRewriteHit|2000|12000|measured
sql-hit||sql|BenchmarkGuardUnmarked|2000|12000|measured
grpc|gRPC unary server interceptor, unmarked|foundation|BenchmarkGRPCUnaryServer/bare|2000|12000|measured
grpc||foundation|BenchmarkGRPCUnaryServer/shadowlane/unmarked|0|0
grpc||foundation|BenchmarkGRPCUnaryServer/shadowlane/unmarked-server-ctx|2000|12000|measured
grpc||foundation|BenchmarkGRPCUnaryServer/shadowlane/unmarked-transport-ctx|2000|12000|measured
grpc||foundation|BenchmarkGRPCUnaryServer/shadowlane/marked|0|0
http|net/http middleware entry, unmarked (2 ordinary headers; 8 browser headers: the entry reads every header key)|foundation|BenchmarkHTTPEntry/few-headers/bare|2000|12000|measured
http||foundation|BenchmarkHTTPEntry/few-headers/shadowlane-internal/unmarked|2000|12000|measured
http||foundation|BenchmarkHTTPEntry/browser-headers/shadowlane-internal/unmarked|2000|12000|measured
limiter|Limiter Entry+Exit on one rule (plain QPS; QPS+concurrency) against x/time/rate Allow and sentinel-golang Entry+Exit, serial|limiter|BenchmarkXRate/serial|2000|12000|measured
limiter||limiter|BenchmarkShadowlaneQPS/serial|2000|12000|measured
limiter||limiter|BenchmarkShadowlane/serial|2000|12000|measured
limiter||limiter|BenchmarkSentinel/serial|2000|12000|measured
gin|gin entry|foundation|BenchmarkGin/bare|2000|12000|measured
gin||foundation|BenchmarkGin/shadowlane/unmarked|2000|12000|measured
gin||foundation|BenchmarkGin/shadowlane/marked-header|0|0
redis|Redis hook (no I/O)|redis|BenchmarkHookOnly/GET/bare|2000|12000|measured
redis||redis|BenchmarkHookOnly/GET/unmarked-guard|2000|12000|measured
redis||redis|BenchmarkHookOnly/GET/marked|0|0
consume-kafka|Kafka consume decision per record (franz-go; no broker: the consume loop steps before and around the handler against the bare handler call, see bench/messaging)|messaging|BenchmarkConsume/kafka/bare|2000|12000|measured
consume-kafka||messaging|BenchmarkConsume/kafka/unmarked|2000|12000|measured
consume-kafka||messaging|BenchmarkConsume/kafka/marked|0|0
consume-amqp|RabbitMQ consume decision per delivery (amqp091-go; no broker)|messaging|BenchmarkConsume/amqp/bare|2000|12000|measured
consume-amqp||messaging|BenchmarkConsume/amqp/unmarked|2000|12000|measured
consume-amqp||messaging|BenchmarkConsume/amqp/marked|0|0
consume-nats|NATS consume decision per message (core nats.go subscription handler; no broker)|messaging|BenchmarkConsume/nats/bare|2000|12000|measured
consume-nats||messaging|BenchmarkConsume/nats/unmarked|2000|12000|measured
consume-nats||messaging|BenchmarkConsume/nats/marked|0|0
service|Whole service: gin + Redis GET (loopback) + SQL SELECT (embedded SQLite), one process per row (timed only; instructions per request: bench/service/cgservice.sh; cpu-ns/op is user+system CPU time of the whole process, against ns/op of wall time)|service|BenchmarkService/bare|0|0
service||service|BenchmarkService/unmarked|0|0
service||service|BenchmarkService/marked50|0|0
service-pg|Whole service, SQL on loopback PostgreSQL (pgx), one process per row (instructions: bench/service/cgservice.sh postgres)|service|BenchmarkServicePostgres/bare|0|0
service-pg||service|BenchmarkServicePostgres/unmarked|0|0
service-pg||service|BenchmarkServicePostgres/marked50|0|0
service-ab|Whole service, the three modes in one process, request by request in rotating order (the same load for each; ns/req means and p50 medians per mode, *-x throughput ratios to bare)|service|BenchmarkServiceAB/sqlite|0|0
service-ab||service|BenchmarkServiceAB/postgres|0|0
'

rows() { printf '%s\n' "$SPEC" | grep -v '^$' | { if [ -n "$ONLY" ]; then awk -F'|' -v o="$ONLY" '$1 ~ o'; else cat; fi; }; }

# regex turns a benchmark path into an anchored -test.bench pattern.
regex() {
	local IFS=/ out="" part
	for part in $1; do
		part=$(printf '%s' "$part" | sed 's/[][\.*^$()+?{}|]/\\&/g')
		out="${out:+$out/}^${part}\$"
	done
	printf '%s' "$out"
}

echo "building test binaries..." >&2
for pkg in $(rows | cut -d'|' -f3 | sort -u); do
	[ -x "$WORK/$pkg.test" ] || nice go test -c -o "$WORK/$pkg.test" "./$pkg" >&2
done

have_valgrind=false
command -v valgrind >/dev/null && have_valgrind=true

# ir BIN PATH N1 N2 HOW prints instructions per op, or: n/a (not
# counted), skipped (service down), failed (the run failed), none (nothing
# collected: the benchmark does not run its operation in measure.Op),
# noise (Ir(N2) - Ir(N1) below one instruction per op).
ir() {
	local bin=$1 path=$2 n1=$3 n2=$4 how=${5:-} a b n toggle gogc cg
	cg="$WORK/cg.$(printf '%s' "$path" | tr -c 'A-Za-z0-9' _)"
	if ! $have_valgrind || [ "$n1" = 0 ]; then echo "n/a"; return; fi
	case $how in
	measured) toggle="--toggle-collect=*measure.Op" gogc=off ;;
	whole) toggle="--collect-atstart=yes" gogc=${GOGC:-100} ;;
	*) echo "results.sh: $path: count how? '$how' (measured or whole)" >&2; echo "n/a"; return ;;
	esac
	# both runs at once: valgrind's start-up dominates on a loaded machine
	for n in "$n1" "$n2"; do
		(cd "$WORK" && GOGC=$gogc GODEBUG=asyncpreemptoff=1 nice valgrind --tool=callgrind \
			"$toggle" --callgrind-out-file="$cg.$n" \
			"$bin" -test.run='^$' -test.bench="$(regex "$path")" -test.benchtime="${n}x" \
			>"$cg.$n.log" 2>&1; echo $? >"$cg.$n.rc") &
	done
	wait
	for n in "$n1" "$n2"; do
		if grep -q -- '--- SKIP' "$cg.$n.log"; then echo "skipped"; return; fi
		if [ "$(cat "$cg.$n.rc")" != 0 ]; then echo "failed"; return; fi
	done
	a=$(awk '/^totals:/ {print $2}' "$cg.$n1")
	b=$(awk '/^totals:/ {print $2}' "$cg.$n2")
	awk -v a="$a" -v b="$b" -v n1="$n1" -v n2="$n2" 'BEGIN {
		if (a !~ /^[0-9]+$/ || b !~ /^[0-9]+$/ || b + 0 == 0) { print "none"; exit }
		v = (b - a) / (n2 - n1)
		if (v < 1) print "noise"; else printf "%d\n", v }'
}

# metrics LINES prints the median of each metric a benchmark reports
# beyond ns/op, B/op and allocs/op, as "unit value, ..." (hit% as "hit N%").
metrics() {
	local unit out="" v
	for unit in $(printf '%s\n' "$1" | awk '{for (i=4;i<=NF;i+=2) if ($i !~ /^(ns|B|allocs)\/op$/) print $i}' | awk '!seen[$0]++'); do
		v=$(printf '%s\n' "$1" | awk -v u="$unit" '{for (i=3;i<NF;i++) if ($(i+1)==u) print $i}' | median)
		if [ "$unit" = "hit%" ]; then v="hit ${v}%"; else v="$unit $v"; fi
		out="${out:+$out, }$v"
	done
	printf '%s' "$out"
}

median() { sort -g | awk '{v[NR]=$1} END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR+1)/2]; else printf "%.4g\n", (v[NR/2] + v[NR/2+1]) / 2 }'; }

{
	echo "# Benchmark results"
	echo
	echo "Generated by \`bash bench/results.sh\` (ROUNDS=$ROUNDS, BENCHTIME=$BENCHTIME) on $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo
	echo "Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown), $(go version | cut -d' ' -f3-4), load average $(cut -d' ' -f1-3 /proc/loadavg) at start."
	echo "$( $have_valgrind && valgrind --version || echo 'valgrind: not installed (no instruction counts)')."
	echo
	echo "**Ir/op** is instructions per operation under callgrind ((Ir(N2) - Ir(N1)) / (N2 - N1), collected inside bench/internal/measure.Op, which runs one operation, with GOGC=off and the stack grown beforehand, or over the whole program for rows marked whole in the script): exact and repeatable for 0-allocation pure-Go paths; rows counted whole-program carry GC, scheduler and start-up noise of ±30% or more; "noise" marks a difference below one instruction per op, "none" a run that collected nothing; compare counts only within one table (each includes the few instructions of the measure.Op call). **ns/op** is the median of $ROUNDS timing rounds that alternate between the rows of a table (A/B/A/B), each \`-test.benchtime=$BENCHTIME\`; it moves with the machine's load. Ratios are to the first row of each table (in the SQL tables: to the bare parser row of the same statement)."
	echo
} >"$WORK/out.md"

# section ID writes the table of comparison ID to $WORK/sec.ID.md
section() {
	local id=$1 title pkg r row p path n1 n2 count lines ns allocs extra ratio base sec iters
	sec="$WORK/sec.$id.md"
	mapfile -t group < <(rows | awk -F'|' -v id="$id" '$1 == id')
	title=$(printf '%s\n' "${group[0]}" | cut -d'|' -f2)
	pkg=$(printf '%s\n' "${group[0]}" | cut -d'|' -f3)
	echo "== $id" >&2
	# timing: ROUNDS rounds, each running every row once (a kept WORK
	# keeps binaries, not the timings of an earlier run)
	: >"$WORK/time.$id.log"
	for ((r = 1; r <= ROUNDS; r++)); do
		for row in "${group[@]}"; do
			IFS='|' read -r _ _ p path _ _ _ <<<"$row"
			(cd "$WORK" && nice "$WORK/$p.test" -test.run='^$' -test.bench="$(regex "$path")" \
				-test.benchtime="$BENCHTIME" -test.benchmem 2>&1 || true) >>"$WORK/time.$id.log"
		done
	done
	{
		echo "## $title"
		echo
		echo "| benchmark | Ir/op | Ir ratio | ns/op (median) | allocs/op | extra |"
		echo "|---|---:|---:|---:|---:|---|"
	} >"$sec"
	base=""
	for row in "${group[@]}"; do
		IFS='|' read -r _ _ p path n1 n2 whole <<<"$row"
		count=$(ir "$WORK/$p.test" "$path" "$n1" "$n2" "$whole")
		# result lines: Benchmark<path>-<procs> N x ns/op [metric unit]... B/op allocs/op
		lines=$(grep -E "^${path//\//\\/}(-[0-9]+)?[[:space:]]" "$WORK/time.$id.log" || true)
		ns=$(printf '%s\n' "$lines" | awk '{for (i=1;i<NF;i++) if ($(i+1)=="ns/op") print $i}' | median)
		allocs=$(printf '%s\n' "$lines" | awk '{for (i=1;i<NF;i++) if ($(i+1)=="allocs/op") print $i}' | median)
		extra=$(metrics "$lines")
		if [ -z "$lines" ]; then
			ns="skipped"
		else
			# a round that ran fewer than 10 iterations timed a stall (or
			# the first, cold call), not the operation: say so
			iters=$(printf '%s\n' "$lines" | awk '{print $2}' | median)
			if awk -v n="$iters" 'BEGIN { exit !(n < 10) }'; then ns="$ns (n=$iters per round)"; fi
		fi
		ratio=""
		# the SQL tables compare each rewrite with its own bare parser (no
		# ratio when that parser has no count); counts are whole numbers
		# >= 1 (ir prints a word otherwise), so no ratio divides by 0
		if [[ "$path" == BenchmarkParse/* ]]; then base=$count; fi
		if [[ "$count" =~ ^[1-9][0-9]*$ ]]; then
			[ -z "$base" ] && base=$count
			if [[ "$base" =~ ^[1-9][0-9]*$ ]]; then
				ratio=$(awk -v a="$count" -v b="$base" 'BEGIN { printf "%.2f×", a / b }')
			fi
		fi
		echo "| \`$path\` | $count | $ratio | $ns | $allocs | $extra |" >>"$sec"
	done
	echo >>"$sec"
	echo "== $id done" >&2
}

# comparisons run JOBS at a time (rows within one stay sequential, A/B/A/B)
ids=$(rows | cut -d'|' -f1 | awk '!seen[$0]++')
for id in $ids; do
	while [ "$(jobs -rp | wc -l)" -ge "${JOBS:-3}" ]; do wait -n || true; done
	section "$id" &
done
wait
for id in $ids; do cat "$WORK/sec.$id.md" >>"$WORK/out.md"; done

{
	echo "Commands: \`go test -c\` per package, then for each row"
	echo "\`GOGC=off GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --toggle-collect='*measure.Op' ./<pkg>.test -test.run='^\$' -test.bench=<row> -test.benchtime=<N>x\`"
	echo "at N1 and N2 (see the SPEC table in bench/results.sh; rows marked whole count the whole program with the default GOGC, --collect-atstart=yes), and"
	echo "\`./<pkg>.test -test.run='^\$' -test.bench=<row> -test.benchtime=$BENCHTIME -test.benchmem\` $ROUNDS times, rows alternating."
} >>"$WORK/out.md"
cp "$WORK/out.md" "$OUT"
echo "wrote $OUT" >&2
