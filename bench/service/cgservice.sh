#!/bin/bash
# cgservice.sh [BACKEND...] : instructions per request of the bench/service
# service, whole process under callgrind (TestServiceInstructions), for
# each backend (sqlite postgres) and mode (bare unmarked marked50).
# SLBENCH_REQUESTS (default 400) requests one at a time per mode. Prints
# raw (dumped Ir / n) and net (less the idle rate x the wall time between
# --zero and --dump) per request. GOMAXPROCS defaults to 1: valgrind runs
# one thread at a time anyway, and with a second P the scheduler's
# spinning while the handler waits on Redis or the database (instructions
# that grow with the wait) moved the counts by +-30% from run to run; with
# one P, 1000 requests repeat within about 1%.
set -e
export GOMAXPROCS=${GOMAXPROCS:-1}
cd "$(dirname "$0")"
work=$(mktemp -d)
trap '[ -n "$KEEP" ] || rm -rf "$work"' EXIT
go test -c -o "$work/service.test" .
n=${SLBENCH_REQUESTS:-400}
total() { awk '/^(totals|summary):/ {print $2; exit}' "$1"; }
# release FIFO: let the test's blocking open of FIFO return (give up after
# a minute if the test is gone)
release() { timeout 60 bash -c 'echo go >"$1"' _ "$1" || echo "release $1: no reader" >&2; }
waitfile() { while [ ! -e "$1" ]; do kill -0 "$2" 2>/dev/null || return 1; sleep 0.05; done; }
for backend in ${*:-sqlite postgres}; do
	for mode in bare unmarked marked50; do
		out="$work/cg.$backend.$mode"
		mkfifo "$out.go" "$out.end" # the test blocks opening them (no polling, no instructions)
		SLBENCH_CALLGRIND_OUT=$out SLBENCH_BACKEND=$backend SLBENCH_MODE=$mode SLBENCH_REQUESTS=$n \
			GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$out" \
			"$work/service.test" -test.run='^TestServiceInstructions$' -test.v >"$out.log" 2>"$out.err" &
		pid=$!
		if ! waitfile "$out.ready" $pid; then echo "$backend $mode: failed"; tail -5 "$out.log"; continue; fi
		callgrind_control --zero $pid >/dev/null 2>&1
		t0=$(date +%s.%N); sleep 3; callgrind_control --dump $pid >/dev/null 2>&1; t1=$(date +%s.%N)
		idle=$(total "$out.1")
		callgrind_control --zero $pid >/dev/null 2>&1
		t2=$(date +%s.%N); release "$out.go"
		waitfile "$out.done" $pid
		callgrind_control --dump $pid >/dev/null 2>&1; t3=$(date +%s.%N)
		release "$out.end"; wait $pid || { echo "$backend $mode: test failed"; tail -5 "$out.log"; continue; }
		ir=$(total "$out.2")
		awk -v b=$backend -v m=$mode -v n=$n -v ir=$ir -v idle=$idle -v t0=$t0 -v t1=$t1 -v t2=$t2 -v t3=$t3 'BEGIN {
			rate = idle / (t1 - t0)
			printf "%-8s %-8s n=%d raw %.0f net %.0f instructions/request (idle %.0f/s, %.1f s)\n", b, m, n, ir / n, (ir - rate * (t3 - t2)) / n, rate, t3 - t2 }'
	done
done
