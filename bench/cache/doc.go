// Package cache compares the statement cache of sqlshadow.Rewriter with
// maintained cache libraries on the same workload (issue 13 item 2):
// hashicorp/golang-lru/v2 (an exact LRU behind a mutex: the reference hit
// ratio), maypok86/otter/v2 (S3-FIFO-style, lock-free reads) and
// dgraph-io/ristretto/v2 (TinyLFU admission, asynchronous sets). The
// workloads are Zipf (s = 1.01) over 10k and 100k distinct statements and
// uniform over 10k, with 4096 entries; each benchmark reports its hit
// ratio as the "hit%" metric. The libraries are measured here only: the
// core module, where the Rewriter lives, takes no third-party dependency
// beyond OpenTelemetry and yaml.
package cache
