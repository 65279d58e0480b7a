package engineio

import (
	"testing"
	"unsafe"
)

// TestIdleStructSizes guards what every idle session holds of this
// package's own structs (BenchmarkIdleSessionMemory measures the whole):
// a field that pushes Session into the next allocation size class costs
// every connection up to 32 or 64 bytes. Sizes are for 64-bit platforms.
func TestIdleStructSizes(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	for _, tt := range []struct {
		name      string
		size, max uintptr
	}{
		{"Session", unsafe.Sizeof(Session{}), 352},
		{"batchConn", unsafe.Sizeof(batchConn{}), 96},
	} {
		if tt.size > tt.max {
			t.Errorf("%s is %d bytes, over %d: keep rarely used fields out of it, or pack them", tt.name, tt.size, tt.max)
		}
	}
}
