package socketio

import (
	"errors"
	"math"
	"slices"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func init() {
	// Both before encode: polling responses must not be compressed or
	// buffered, and a site then needs no order option or route block.
	// socketio_api is registered first, so that it sorts before socketio
	// (next to it, before every terminal handler: a matcher is all a site
	// needs).
	httpcaddyfile.RegisterHandlerDirective("socketio_api", parseAPICaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("socketio_api", httpcaddyfile.Before, "encode")
	httpcaddyfile.RegisterHandlerDirective("socketio", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("socketio", httpcaddyfile.Before, "encode")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Every
// subdirective may appear once; list values go on one line.
//
// Syntax:
//
//	socketio [<matcher>] {
//		name            <hub name>
//		path            <path>
//		ping_interval   <duration>
//		ping_timeout    <duration>
//		max_payload     <size>
//		transports      polling|websocket...
//		allow_upgrades  true|false
//		allow_eio3      [true|false]
//		compression {
//			websocket on|off
//			polling   on|off
//			threshold <size>
//		}
//		connect_timeout <duration>
//		drain           <duration>
//		origins         <origin|*>...
//		namespaces      <name|pattern>...
//		auth [required|optional|off] {
//			secret      <hmac secret>
//			public_key  <pem|file>
//			algorithms  <alg>...
//			issuer      <iss>
//			audience    <aud>...
//			leeway      <duration>
//			token_from  auth[:<field>]|header[:<name>]|query:<param>|cookie:<name>...
//		}
//		join            <room template>...
//		room_requests   <join event> [<leave event>]
//		allow_rooms     <room pattern>...
//		announce        <event> <text>
//		announce_leave  <event> <text>
//		emit            <event> <text>
//		relay           <event>...
//		log_events      <event>...|*
//		webhook {
//			secret          <secret>
//			events          <url> <event|pattern>...
//			connect         <url>
//			disconnect      <url>
//			server_side     <url>
//			headers         <name>...
//			cookies         <name>...
//			timeout             <duration>
//			max_concurrency     <n>
//			connect_concurrency <n>
//			queue               <n>
//			max_body            <size>
//		}
//		adapter memory | redis <url> {
//			key             <prefix>
//			request_timeout <duration>
//			advertise       <host:port>
//		}
//		limits {
//			event_rate         <per second> [<burst>] | off
//			max_rooms          <n>
//			max_name_length    <bytes>
//			send_buffer        <size> [<max size>]
//			slow_client_grace  <duration>
//			max_packets        <n>
//			attachment_timeout <duration>
//			max_connections         <n> | off
//			max_connections_per_ip  <n> | off
//			handshake_rate          <per second> [<burst>] | off
//			max_sockets_per_subject <n> | off
//			max_namespaces          <n> | off
//			max_pending_acks        <n> | off
//		}
//		recovery {
//			max_disconnection_duration <duration>
//			skip_middlewares           true|false
//			buffer                     <size>
//			sessions                   <size>
//		}
//		presence {
//			webhook  <url>
//			by       <template>
//			grace    <duration>
//			max_size <size>
//		}
//		admin_ui {
//			username      <user>
//			password_hash <bcrypt hash>
//			readonly
//			namespace     <name>
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	if err := eachSubdirective(d, "", func(sub string) error {
		var err error
		switch sub {
		case "name":
			err = oneArg(d, &h.Name)
		case "path":
			err = oneArg(d, &h.Path)
		case "ping_interval":
			err = durationArg(d, &h.PingInterval)
		case "ping_timeout":
			err = durationArg(d, &h.PingTimeout)
		case "connect_timeout":
			err = durationArg(d, &h.ConnectTimeout)
		case "drain": // 0 allowed: close at once, the default
			var v string
			if err = oneArg(d, &v); err == nil {
				dur, perr := caddy.ParseDuration(v)
				if perr != nil || dur < 0 {
					return d.Errf("drain: invalid duration %q", v)
				}
				h.Drain = caddy.Duration(dur)
			}
		case "max_payload":
			err = sizeArg(d, &h.MaxPayload)
		case "transports":
			err = listArg(d, &h.Transports)
			for _, t := range h.Transports {
				if terr := checkTransport(t); terr != nil {
					return d.Err(terr.Error())
				}
			}
		case "allow_upgrades":
			var b bool
			if err = boolArg(d, "allow_upgrades", &b); err == nil {
				h.AllowUpgrades = &b
			}
		case "allow_eio3":
			h.AllowEIO3 = true
			if d.NextArg() {
				b, perr := strconv.ParseBool(d.Val())
				if perr != nil {
					return d.Errf("allow_eio3: want true or false, got %q", d.Val())
				}
				h.AllowEIO3 = b
				if d.NextArg() {
					return d.ArgErr()
				}
			}
		case "compression":
			err = h.unmarshalCompression(d)
		case "origins":
			err = listArg(d, &h.Origins)
		case "namespaces":
			err = listArg(d, &h.Namespaces)
		case "auth":
			err = h.unmarshalAuth(d)
		case "join":
			err = listArg(d, &h.Join)
		case "room_requests":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.ArgErr()
			}
			h.RoomRequests = &RoomRequests{Join: args[0]}
			if len(args) == 2 {
				h.RoomRequests.Leave = args[1]
			}
		case "allow_rooms":
			err = listArg(d, &h.AllowRooms)
		case "announce":
			h.Announce, err = messageArg(d)
		case "announce_leave":
			h.AnnounceLeave, err = messageArg(d)
		case "emit":
			h.Emit, err = messageArg(d)
		case "relay":
			err = listArg(d, &h.Relay)
		case "log_events":
			err = listArg(d, &h.LogEvents)
		case "webhook":
			err = h.unmarshalWebhook(d)
		case "limits":
			err = h.unmarshalLimits(d)
		case "recovery":
			err = h.unmarshalRecovery(d)
		case "presence":
			err = h.unmarshalPresence(d)
		case "adapter":
			err = h.unmarshalAdapter(d)
		case "admin_ui":
			err = h.unmarshalAdminUI(d)
		default:
			return d.Errf("unrecognized subdirective %q", sub)
		}
		return err
	}); err != nil {
		return err
	}
	// Once the whole block is read: presence needs the webhook's secret,
	// neither takes the redis adapter yet, and the admin namespace is
	// checked against namespaces, which may come after its block.
	if err := errors.Join(h.Presence.check(h.Webhook), h.Recovery.check(), h.AdminUI.check(h.Namespaces)); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// unmarshalAdapter reads "adapter memory" or
// "adapter redis <url> { key, request_timeout, advertise }".
func (h *Handler) unmarshalAdapter(d *caddyfile.Dispenser) error {
	a := &AdapterConfig{}
	h.Adapter = a
	if !d.NextArg() {
		return d.Errf("adapter: want memory or redis <url>")
	}
	a.Type = d.Val()
	switch a.Type {
	case AdapterMemory:
		if d.NextArg() {
			return d.ArgErr()
		}
	case AdapterRedis:
		if !d.NextArg() {
			return d.Errf("adapter: redis: a URL is required (redis://host:port)")
		}
		a.URL = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	default:
		return d.Errf("adapter: unknown type %q (want memory or redis)", a.Type)
	}
	if err := eachSubdirective(d, "adapter: ", func(sub string) error {
		if a.Type != AdapterRedis {
			return d.Errf("adapter: %s: only the redis adapter takes settings", sub)
		}
		switch sub {
		case "key":
			return oneArg(d, &a.Key)
		case "request_timeout":
			return durationArg(d, &a.RequestTimeout)
		case "advertise":
			return oneArg(d, &a.Advertise)
		}
		return d.Errf("adapter: unrecognized subdirective %q", sub)
	}); err != nil {
		return err
	}
	if err := a.check(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// unmarshalAdminUI parses the admin_ui subdirective of socketio.
//
//	admin_ui {
//		username      <user>
//		password_hash <bcrypt hash>
//		readonly
//		namespace     <name>
//	}
func (h *Handler) unmarshalAdminUI(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	a := &AdminUI{}
	h.AdminUI = a
	return eachSubdirective(d, "admin_ui: ", func(sub string) error {
		switch sub {
		case "username":
			return oneArg(d, &a.Username)
		case "password_hash":
			return oneArg(d, &a.PasswordHash)
		case "readonly":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.ReadOnly = true
			return nil
		case "namespace":
			return oneArg(d, &a.Namespace)
		default:
			return d.Errf("admin_ui: unrecognized subdirective %q", sub)
		}
	})
}

func (h *Handler) unmarshalAuth(d *caddyfile.Dispenser) error {
	a := &AuthConfig{}
	h.Auth = a
	if d.NextArg() {
		a.Mode = d.Val()
		if err := checkAuthMode(a.Mode); err != nil || a.Mode == "" {
			return d.Errf("auth: unknown mode %q (want required, optional or off)", a.Mode)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if err := eachSubdirective(d, "auth: ", func(sub string) error {
		var err error
		switch sub {
		case "secret":
			err = oneArg(d, &a.Secret)
		case "public_key":
			err = oneArg(d, &a.PublicKey)
		case "algorithms":
			err = listArg(d, &a.Algorithms)
			for _, alg := range a.Algorithms {
				if aerr := checkAlgorithm(alg); aerr != nil {
					return d.Err(aerr.Error())
				}
			}
		case "issuer":
			err = oneArg(d, &a.Issuer)
		case "audience":
			err = listArg(d, &a.Audience)
		case "leeway":
			err = durationArg(d, &a.Leeway)
		case "token_from":
			err = listArg(d, &a.TokenFrom)
		default:
			return d.Errf("auth: unrecognized subdirective %q", sub)
		}
		return err
	}); err != nil {
		return err
	}
	if err := a.check(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// eachSubdirective calls fn for every subdirective of the block at the
// dispenser's position. A subdirective given twice fails with file and
// line, unless it is one of repeatable; prefix names the enclosing block in
// errors ("auth: ").
func eachSubdirective(d *caddyfile.Dispenser, prefix string, fn func(sub string) error, repeatable ...string) error {
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] && !slices.Contains(repeatable, sub) {
			return d.Errf("%s%s: subdirective given twice", prefix, sub)
		}
		seen[sub] = true
		if err := fn(sub); err != nil {
			return err
		}
	}
	return nil
}

// sizeArg reads one size argument such as 1MB or 512KiB into dst, in bytes.
func sizeArg(d *caddyfile.Dispenser, dst *int64) error {
	sub := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 || n > 1<<40 {
		return d.Errf("%s: invalid size %q", sub, s)
	}
	*dst = int64(n)
	return nil
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func listArg(d *caddyfile.Dispenser, dst *[]string) error {
	args := d.RemainingArgs()
	if len(args) == 0 {
		return d.ArgErr()
	}
	*dst = args
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	sub := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: invalid duration %q: %v", sub, s, err)
	}
	if dur <= 0 {
		return d.Errf("%s: invalid duration %q: must be positive", sub, s)
	}
	*dst = caddy.Duration(dur)
	return nil
}

func messageArg(d *caddyfile.Dispenser) (*Message, error) {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return nil, d.ArgErr()
	}
	return &Message{Event: args[0], Text: args[1]}, nil
}

// unmarshalLimits parses the limits subdirective of socketio.
// unmarshalCompression parses the compression block.
func (h *Handler) unmarshalCompression(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	c := &Compression{}
	h.Compression = c
	err := eachSubdirective(d, "compression: ", func(sub string) error {
		switch sub {
		case "websocket":
			return onOffArg(d, "compression: websocket", &c.WebSocket)
		case "polling":
			var b bool
			if err := onOffArg(d, "compression: polling", &b); err != nil {
				return err
			}
			c.Polling = &b
			return nil
		case "threshold":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			n, err := humanize.ParseBytes(s)
			if err != nil || n > maxCompressionThreshold {
				return d.Errf("compression: threshold: invalid size %q", s)
			}
			c.Threshold = int64(n)
			return nil
		}
		return d.Errf("compression: unrecognized subdirective %q", sub)
	})
	if err != nil {
		return err
	}
	if cerr := c.check(); cerr != nil {
		return d.Err(cerr.Error())
	}
	return nil
}

// onOffArg reads one on|off (or true|false) argument.
func onOffArg(d *caddyfile.Dispenser, name string, dst *bool) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	switch s {
	case "on", "true":
		*dst = true
	case "off", "false":
		*dst = false
	default:
		return d.Errf("%s: want on or off, got %q", name, s)
	}
	return nil
}

// boolArg parses the one true/false argument of the subdirective what
// into dst.
func boolArg(d *caddyfile.Dispenser, what string, dst *bool) error {
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return d.Errf("%s: want true or false, got %q", what, s)
	}
	*dst = b
	return nil
}

func (h *Handler) unmarshalLimits(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	l := &Limits{}
	h.Limits = l
	err := eachSubdirective(d, "limits: ", func(sub string) error {
		switch sub {
		case "event_rate":
			args := d.RemainingArgs()
			if len(args) == 1 && args[0] == "off" {
				l.EventRate, l.EventBurst = -1, -1
				return nil
			}
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("limits: event_rate: want <per second> [<burst>] or off")
			}
			rate, err := strconv.ParseFloat(args[0], 64)
			if err != nil || rate <= 0 {
				return d.Errf("limits: event_rate: want a positive number of events per second, got %q", args[0])
			}
			l.EventRate = rate
			if len(args) == 2 {
				return positiveInt(d, "limits: event_rate: burst", args[1], &l.EventBurst)
			}
			return nil
		case "max_rooms", "max_name_length", "max_packets":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			dst := map[string]*int{"max_rooms": &l.MaxRooms, "max_name_length": &l.MaxNameLength, "max_packets": &l.MaxPackets}[sub]
			return positiveInt(d, "limits: "+sub, s, dst)
		case "send_buffer":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("limits: send_buffer: want <size> [<max size>]")
			}
			for i, a := range args {
				n, err := humanize.ParseBytes(a)
				if err != nil || n == 0 || n > 1<<40 {
					return d.Errf("limits: send_buffer: invalid size %q", a)
				}
				if i == 0 {
					l.SendBuffer = int64(n)
				} else {
					l.SendBufferMax = int64(n)
				}
			}
			return nil
		case "slow_client_grace":
			return durationArg(d, &l.SlowClientGrace)
		case "attachment_timeout":
			return durationArg(d, &l.AttachmentTimeout)
		case "max_connections", "max_connections_per_ip", "max_sockets_per_subject", "max_namespaces", "max_pending_acks":
			var s string
			if err := oneArg(d, &s); err != nil {
				return err
			}
			dst := map[string]*int{
				"max_connections": &l.MaxConnections, "max_connections_per_ip": &l.MaxConnectionsPerIP,
				"max_sockets_per_subject": &l.MaxSocketsPerSubject, "max_namespaces": &l.MaxNamespaces,
				"max_pending_acks": &l.MaxPendingAcks,
			}[sub]
			if s == "off" {
				*dst = -1
				return nil
			}
			return positiveInt(d, "limits: "+sub, s, dst)
		case "handshake_rate":
			args := d.RemainingArgs()
			if len(args) == 1 && args[0] == "off" {
				l.HandshakeRate, l.HandshakeBurst = -1, -1
				return nil
			}
			if len(args) < 1 || len(args) > 2 {
				return d.Errf("limits: handshake_rate: want <per second> [<burst>] or off")
			}
			rate, err := strconv.ParseFloat(args[0], 64)
			if err != nil || rate <= 0 || math.IsInf(rate, 0) {
				return d.Errf("limits: handshake_rate: want a positive number of handshakes per second, got %q", args[0])
			}
			l.HandshakeRate = rate
			if len(args) == 2 {
				return positiveInt(d, "limits: handshake_rate: burst", args[1], &l.HandshakeBurst)
			}
			return nil
		}
		return d.Errf("limits: unrecognized subdirective %q", sub)
	})
	if err != nil {
		return err
	}
	if err := l.check(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// positiveInt parses a positive integer argument into dst.
func positiveInt(d *caddyfile.Dispenser, what, s string, dst *int) error {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return d.Errf("%s: want a positive number, got %q", what, s)
	}
	*dst = n
	return nil
}

// unmarshalRecovery parses the recovery subdirective of socketio; without
// a block it turns recovery on with the defaults.
func (h *Handler) unmarshalRecovery(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	r := &Recovery{}
	h.Recovery = r
	if err := eachSubdirective(d, "recovery: ", func(sub string) error {
		switch sub {
		case "max_disconnection_duration":
			return durationArg(d, &r.MaxDisconnectionDuration)
		case "skip_middlewares":
			var b bool
			if err := boolArg(d, "recovery: skip_middlewares", &b); err != nil {
				return err
			}
			r.SkipMiddlewares = &b
			return nil
		case "buffer":
			return sizeArg(d, &r.Buffer)
		case "sessions":
			return sizeArg(d, &r.Sessions)
		}
		return d.Errf("recovery: unrecognized subdirective %q", sub)
	}); err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return d.Err(err.Error())
	}
	return nil
}

// unmarshalPresence parses the presence subdirective of socketio; without
// a block it tracks users by {socketio.claims.sub} with no hook. Its check
// needs the webhook block, which may come after it: Validate runs it.
func (h *Handler) unmarshalPresence(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	pc := &PresenceConfig{}
	h.Presence = pc
	return eachSubdirective(d, "presence: ", func(sub string) error {
		switch sub {
		case "webhook":
			if err := oneArg(d, &pc.Webhook); err != nil {
				return err
			}
			if err := checkWebhookURL(pc.Webhook); err != nil {
				return d.Errf("presence: webhook: %v", err)
			}
			return nil
		case "by":
			return oneArg(d, &pc.By)
		case "grace":
			return durationArg(d, &pc.Grace)
		case "max_size":
			return sizeArg(d, &pc.MaxSize)
		}
		return d.Errf("presence: unrecognized subdirective %q", sub)
	})
}

// unmarshalWebhook parses the webhook subdirective of socketio.
//
//	webhook {
//		secret          <secret>
//		events          <url> <event|pattern>...
//		connect         <url>
//		disconnect      <url>
//		headers         <name>...
//		cookies         <name>...
//		timeout             <duration>
//		max_concurrency     <n>
//		connect_concurrency <n>
//		queue               <n>
//		max_body            <size>
//	}
//
// events may be given several times, one line per URL.
func (h *Handler) unmarshalWebhook(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	wh := &Webhook{}
	h.Webhook = wh
	if err := eachSubdirective(d, "webhook: ", func(sub string) error {
		var err error
		switch sub {
		case "secret":
			err = oneArg(d, &wh.Secret)
		case "events":
			args := d.RemainingArgs()
			if len(args) < 2 {
				return d.Errf("webhook: events: want <url> <event>...")
			}
			if err := checkWebhookURL(args[0]); err != nil {
				return d.Errf("webhook: events: %v", err)
			}
			wh.Events = append(wh.Events, WebhookRoute{URL: args[0], Match: args[1:]})
		case "connect", "disconnect", "server_side":
			var u string
			if err = oneArg(d, &u); err == nil {
				if cerr := checkWebhookURL(u); cerr != nil {
					return d.Errf("webhook: %s: %v", sub, cerr)
				}
				switch sub {
				case "connect":
					wh.Connect = u
				case "disconnect":
					wh.Disconnect = u
				default:
					wh.ServerSide = u
				}
			}
		case "headers":
			err = listArg(d, &wh.Headers)
		case "cookies":
			err = listArg(d, &wh.Cookies)
		case "timeout":
			err = durationArg(d, &wh.Timeout)
		case "max_concurrency", "connect_concurrency", "queue":
			var s string
			if err = oneArg(d, &s); err == nil {
				n, perr := strconv.Atoi(s)
				if perr != nil || n <= 0 {
					return d.Errf("webhook: %s: want a positive number, got %q", sub, s)
				}
				switch sub {
				case "queue":
					wh.Queue = n
				case "connect_concurrency":
					wh.ConnectConcurrency = n
				default:
					wh.MaxConcurrency = n
				}
			}
		case "max_body":
			err = sizeArg(d, &wh.MaxBody)
		default:
			return d.Errf("webhook: unrecognized subdirective %q", sub)
		}
		return err
	}, "events"); err != nil {
		return err
	}
	if err := wh.checkSecret(); err != nil {
		return d.Err(err.Error())
	}
	return nil
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
var (
	_ caddyfile.Unmarshaler = (*Handler)(nil)
	_ caddyfile.Unmarshaler = (*API)(nil)
)
