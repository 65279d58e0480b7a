package socketio

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
	if err := eachSubdirective(d, "", func(sub string) error {
		var err error
		switch sub {
		case "hub":
			err = oneArg(d, &a.Hub)
		case "secrets":
			err = listArg(d, &a.Secrets)
		case "max_body":
			err = sizeArg(d, &a.MaxBody)
		default:
			return d.Errf("unrecognized subdirective %q", sub)
		}
		return err
	}); err != nil {
		return err
	}
	if len(a.Secrets) == 0 {
		return d.Err("socketio_api: secrets are required")
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*API)(nil)
