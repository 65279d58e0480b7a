package socketio

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/caddy-socketio/caddy-socketio/realtime/cluster"
)

// forwarders holds the cluster forwarders (realtime/cluster) of the hubs
// on a Redis adapter, keyed by the adapter's identity and the advertised
// address, so that a reload keeps them, their Redis connection and the
// node's registration; the last handler using one destroys it.
var forwarders = caddy.NewUsagePool()

// forwarder is a pooled cluster forwarder with what it runs on.
type forwarder struct {
	rdb *redis.Client
	reg *cluster.Registry
	fwd *cluster.Forwarder
}

// Destruct ends the requests being forwarded, removes the node's entry
// from Redis and closes the connection.
func (f *forwarder) Destruct() error {
	f.fwd.Close()
	f.reg.Close()
	if err := f.rdb.Close(); err != nil {
		return fmt.Errorf("closing the cluster registry's redis connection: %w", err)
	}
	return nil
}

// acquireForwarder takes the forwarder of a hub on the Redis adapter
// (none for the memory adapter) into h.forwarder, for serverOptions: a
// request for a session that another node of the cluster holds is
// forwarded to it, and this node's session ids name it when it
// advertises an address. Nothing is written to Redis before the hub's
// first session (see cluster.Forwarder.NodeID), so `caddy validate`
// leaves the cluster alone. releaseForwarder undoes it.
func (h *Handler) acquireForwarder(setup *adapterSetup) error {
	if setup == nil || setup.redisOptions == nil {
		return nil
	}
	key := setup.identity + "\x00" + setup.advertise
	val, _, err := forwarders.LoadOrNew(key, func() (caddy.Destructor, error) {
		opts := *setup.redisOptions
		routeRedisLogs()
		rdb := redis.NewClient(&opts)
		reg, err := cluster.NewRegistry(cluster.RegistryOptions{
			Client:    rdb,
			Key:       setup.key,
			Advertise: setup.advertise,
			Logger:    h.logger,
		})
		if err != nil {
			_ = rdb.Close()
			return nil, err
		}
		fwd := cluster.NewForwarder(cluster.ForwarderOptions{Registry: reg, Logger: h.logger})
		if setup.advertise != "" {
			h.logger.Info("forwarding requests of other nodes' sessions; peers reach this node on its advertised address",
				zap.String("advertise", setup.advertise), zap.String("node", reg.NodeID()))
		}
		return &forwarder{rdb: rdb, reg: reg, fwd: fwd}, nil
	})
	if err != nil {
		return fmt.Errorf("starting the cluster forwarder: %w", err)
	}
	h.forwardKey = key
	h.forwarder = val.(*forwarder).fwd
	return nil
}

// releaseForwarder lets go of the handler's forwarder, if any.
func (h *Handler) releaseForwarder() {
	if h.forwardKey == "" {
		return
	}
	if _, err := forwarders.Delete(h.forwardKey); err != nil {
		h.logger.Warn("closing the cluster forwarder", zap.Error(err))
	}
	h.forwardKey, h.forwarder = "", nil
}
