// Package limiter benchmarks shadowlane's flow-control limiter side by side
// with its peers in one run: sentinel-golang (Entry+Exit with a flow rule),
// golang.org/x/time/rate (Allow) and go-kratos/aegis BBR (Allow+done).
//
//	cd bench && go test -run x -bench . -count 5 ./limiter | tee new.txt && benchstat new.txt
//
// Every limiter is configured so that nothing is refused: the benchmarks
// measure the cost of an admitted request, the hot path.
package limiter
