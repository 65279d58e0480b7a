package engineio

import (
	"context"
	"net/http/httptest"
	"testing"
)

type otherKey struct{}

func TestKeptContextKeepsOnlyTheKeptValue(t *testing.T) {
	r := httptest.NewRequest("GET", "/socket.io/?EIO=4&transport=polling", nil)
	ctx := context.WithValue(r.Context(), otherKey{}, "dropped")
	ctx, cancel := context.WithCancel(WithKept(ctx, "kept"))
	cancel()
	kept := r.WithContext(keptContext(ctx))
	if got := Kept(kept); got != "kept" {
		t.Fatalf("Kept = %v, want kept", got)
	}
	if kept.Context().Value(otherKey{}) != nil {
		t.Fatal("another context value was kept")
	}
	if kept.Context().Err() != nil {
		t.Fatal("the kept context is cancelled with the request's")
	}
	if Kept(r) != nil || Kept(nil) != nil {
		t.Fatal("Kept without a value is not nil")
	}
	if keptContext(r.Context()) != context.Background() {
		t.Fatal("without a kept value, the context is not the background one")
	}
}
