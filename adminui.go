package socketio

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime/adminui"
)

// AdminUI serves the namespace that the @socket.io/admin-ui dashboard
// (0.5.1) connects to, on the hub's path: a login, the live view of the
// hub's sockets, rooms and events, the server's stats, and the actions
// (join, leave, disconnect, emit) unless read-only. See docs/admin-ui.md.
type AdminUI struct {
	// Username is the login's user name. Required.
	Username string `json:"username,omitempty"`

	// PasswordHash is the bcrypt hash of the login's password ($2a$, $2b$
	// or $2y$; `caddy hash-password` makes one). Placeholders such as
	// {env.ADMIN_UI_HASH} are resolved at load. Required.
	PasswordHash string `json:"password_hash,omitempty"`

	// ReadOnly lets the dashboard watch, and refuses its actions.
	ReadOnly bool `json:"readonly,omitempty"`

	// Namespace is the admin namespace; it must not be one the namespaces
	// option serves. Default: /admin.
	Namespace string `json:"namespace,omitempty"`
}

// uiConfig resolves the block into the adminui package's config (nil
// without a block). Credentials carried by the auth block's token sources
// are redacted from the sockets the dashboard shows.
func (h *Handler) uiConfig(repl *caddy.Replacer) (*adminui.Config, error) {
	a := h.AdminUI
	if a == nil {
		return nil, nil
	}
	c := &adminui.Config{
		Namespace:    a.Namespace,
		Username:     a.Username,
		PasswordHash: repl.ReplaceKnown(a.PasswordHash, ""),
		ReadOnly:     a.ReadOnly,
	}
	if h.Auth != nil {
		for _, src := range h.Auth.TokenFrom {
			kind, name, _ := strings.Cut(src, ":")
			switch kind {
			case "header":
				c.RedactHeaders = append(c.RedactHeaders, name)
			case "query":
				c.RedactQuery = append(c.RedactQuery, name)
			}
		}
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return c, nil
}

// configureAdminUI applies a policy's admin_ui to the hub's admin UI
// (none disables it). The config was checked at Provision.
func (h *hub) configureAdminUI(p *policy) {
	if err := h.admin.Configure(p.adminUI); err != nil {
		p.logger.Error("configuring the admin UI", zap.Error(err))
	}
}
