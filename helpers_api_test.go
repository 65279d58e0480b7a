package socketio

// The lower-case names api_test.go calls on the raw client; the root's
// other tests call testkit.WS's methods on a wsClient directly. Delete this
// file once api_test.go does the same.

func (c *wsClient) send(s string) {
	c.T.Helper()
	c.Send(s)
}

func (c *wsClient) expectPrefix(prefix string) string {
	c.T.Helper()
	return c.ExpectPrefix(prefix)
}
