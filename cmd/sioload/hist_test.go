package main

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestBucketRangeContainsValue(t *testing.T) {
	values := []int64{0, 1, 31, 32, 33, 63, 64, 65, 100, 1000, 12345, 1 << 20, 999_999_999, 1<<40 + 7, math.MaxInt64}
	for v := int64(1); v < 1<<50; v = v*3 + 1 {
		values = append(values, v)
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d out of range", v, i)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if v >= 1<<histSubBits && float64(hi-lo+1)/float64(lo) > 1.0/(1<<histSubBits)+1e-12 {
			t.Errorf("bucket %d = [%d, %d] wider than 1/%d of its start", i, lo, hi, 1<<histSubBits)
		}
	}
}

func TestBucketsAreContiguous(t *testing.T) {
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	// 1..10000 microseconds, each once.
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 5000 * time.Microsecond},
		{0.99, 9900 * time.Microsecond},
		{0.999, 9990 * time.Microsecond},
		{1, 10000 * time.Microsecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		if rel := math.Abs(float64(got-tt.want)) / float64(tt.want); rel > 1.0/(1<<histSubBits) {
			t.Errorf("Quantile(%v) = %v, want %v within 1/%d", tt.q, got, tt.want, 1<<histSubBits)
		}
	}
	if got := h.Max(); got != 10*time.Millisecond {
		t.Errorf("Max = %v", got)
	}
	if got, want := h.Mean(), 5000500*time.Nanosecond; got != want {
		t.Errorf("Mean = %v, want %v", got, want)
	}
	if h.Count() != 10000 {
		t.Errorf("Count = %d", h.Count())
	}
}

func TestQuantileSkewed(t *testing.T) {
	var h histogram
	// 98 fast, 2 slow: p50 is fast, p99 is slow.
	for range 98 {
		h.Record(time.Millisecond)
	}
	h.Record(2 * time.Second)
	h.Record(2 * time.Second)
	if p50 := h.Quantile(0.5); p50 < 900*time.Microsecond || p50 > 1100*time.Microsecond {
		t.Errorf("p50 = %v, want about 1ms", p50)
	}
	if p99 := h.Quantile(0.99); p99 < 1900*time.Millisecond || p99 > 2*time.Second {
		t.Errorf("p99 = %v, want about 2s", p99)
	}
}

func TestQuantileEmptyAndNegative(t *testing.T) {
	var h histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram reports a value")
	}
	h.Record(-time.Second) // a clock step must not panic or count negative
	if h.Quantile(0.5) != 0 || h.Count() != 1 {
		t.Errorf("negative record: p50 %v count %d", h.Quantile(0.5), h.Count())
	}
}

func TestHistogramConcurrent(t *testing.T) {
	var h histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if h.Count() != 8000 {
		t.Errorf("Count = %d, want 8000", h.Count())
	}
	if got := h.Max(); got != 7999*time.Microsecond {
		t.Errorf("Max = %v", got)
	}
}
