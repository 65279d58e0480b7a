package socketio

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("socketio_api", parseAPICaddyfile)
	// Next to socketio, before encode and every terminal handler
	// (reverse_proxy, file_server), so a matcher is all a site needs.
	httpcaddyfile.RegisterDirectiveOrder("socketio_api", httpcaddyfile.Before, "encode")
}

func parseAPICaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	a := new(API)
	err := a.UnmarshalCaddyfile(h.Dispenser)
	return a, err
}

// UnmarshalCaddyfile sets up the API from Caddyfile tokens. Give it a
// matcher (or its own site) so that only its requests reach it.
//
// Syntax:
//
//	socketio_api [<matcher>] {
//		hub      <hub name>
//		secrets  <secret>...
//		max_body <size>
//	}
func (a *API) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("%s: subdirective given twice", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "hub":
			err = oneArg(d, &a.Hub)
		case "secrets":
			err = listArg(d, &a.Secrets)
		case "max_body":
			var s string
			if err = oneArg(d, &s); err == nil {
				n, perr := humanize.ParseBytes(s)
				if perr != nil || n == 0 || n > 1<<40 {
					return d.Errf("max_body: invalid size %q", s)
				}
				a.MaxBody = int64(n)
			}
		default:
			return d.Errf("unrecognized subdirective %q", sub)
		}
		if err != nil {
			return err
		}
	}
	if len(a.Secrets) == 0 {
		return d.Err("socketio_api: secrets are required")
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*API)(nil)
