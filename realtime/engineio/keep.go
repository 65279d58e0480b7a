package engineio

import (
	"context"
	"net/http"
)

// keptKey is the context key of the value a session keeps from its
// handshake request.
type keptKey struct{}

// WithKept returns ctx carrying v. A session made from a handshake request
// whose context holds such a value keeps that value, and only it: the rest
// of the request's context ends with the HTTP exchange and is dropped (see
// newSession). A host server uses it to carry what it knew about the
// handshake request (an authenticated user, say) to the session's handlers.
func WithKept(ctx context.Context, v any) context.Context {
	return context.WithValue(ctx, keptKey{}, v)
}

// Kept returns the value that WithKept put in the handshake request r's
// context, from a session's Request; nil if there is none.
func Kept(r *http.Request) any {
	if r == nil {
		return nil
	}
	return r.Context().Value(keptKey{})
}

// keptContext is a background context carrying only the kept value of ctx.
func keptContext(ctx context.Context) context.Context {
	if v := ctx.Value(keptKey{}); v != nil {
		return context.WithValue(context.Background(), keptKey{}, v)
	}
	return context.Background()
}
