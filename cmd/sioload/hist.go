package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// histSubBits sets the precision of histogram: 2^histSubBits buckets per power
// of two keep every reported quantile within 1/32 (about 3%) of the true value,
// enough for p50/p99 comparisons, while the whole table stays a few KiB.
const histSubBits = 5

// histBuckets covers every non-negative int64.
const histBuckets = (64 - histSubBits) << histSubBits

// histogram counts durations (nanoseconds) in log-linear buckets. Record is
// lock-free, so thousands of reader goroutines can share one histogram
// without a mutex on the receive path.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
}

// bucketOf maps v >= 0 to its bucket; values below 2^histSubBits get a bucket
// each, above that every power of two is split in 2^histSubBits equal parts.
func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	if u < 1<<histSubBits {
		return int(u)
	}
	shift := bits.Len64(u) - histSubBits - 1
	return (shift+1)<<histSubBits + int(u>>shift) - 1<<histSubBits
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 1<<histSubBits {
		return int64(i), int64(i)
	}
	shift := i>>histSubBits - 1
	m := uint64(i&(1<<histSubBits-1)) + 1<<histSubBits
	lo = int64(m << shift)
	hiU := (m+1)<<shift - 1
	if hiU > math.MaxInt64 {
		hiU = math.MaxInt64
	}
	return lo, int64(hiU)
}

// Record adds one duration; negative durations (clock steps) count as zero.
func (h *histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count returns the number of recorded values.
func (h *histogram) Count() uint64 { return h.total.Load() }

// Quantile returns the value at quantile q (0..1) as the midpoint of its
// bucket, capped by the largest value seen; zero when nothing was recorded.
func (h *histogram) Quantile(q float64) time.Duration {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	if q < 0 {
		q = 0
	}
	if q > 1 {
		q = 1
	}
	rank := uint64(math.Ceil(q * float64(total)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			if m := h.max.Load(); v > m {
				v = m
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max.Load())
}

// Mean returns the arithmetic mean of the recorded values.
func (h *histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Max returns the largest recorded value.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }
