// Package cluster holds what several gatehouse instances share: one Redis
// client per configuration, kept across reloads that do not change it.
package cluster

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/gatehouse-proxy/gatehouse/internal/config"
	"github.com/gatehouse-proxy/gatehouse/internal/filter"
	"github.com/redis/go-redis/v9"
)

// Redis returns the fleet's Redis client for c, shared by every filter of a
// snapshot and by the next snapshot when cluster.redis did not change. The
// client connects lazily: an unreachable Redis is the filters' to handle
// (fail open or closed), never a reason to refuse a configuration.
func Redis(st *filter.State, c *config.Redis) (*redis.Client, error) {
	if c == nil {
		return nil, fmt.Errorf("needs cluster.redis (the Redis server the fleet shares)")
	}
	key := fmt.Sprintf("cluster.redis|%s|%s|%s|%d|%s|%s|%t", c.Addr, c.Username, c.PasswordFile, c.DB, c.DialTimeout, c.Timeout, c.TLS)
	return filter.Keep(st, key, func() (*redis.Client, error) {
		opt := &redis.Options{
			Addr:         c.Addr,
			Username:     c.Username,
			DB:           c.DB,
			DialTimeout:  c.DialTimeout,
			ReadTimeout:  c.Timeout,
			WriteTimeout: c.Timeout,
			// Retries would multiply the time a request waits on a Redis
			// that is down; the callers fail open or closed at once instead.
			MaxRetries: -1,
			// Likewise for dialing (go-redis tries 5 times by default, so a
			// Redis that is down would cost ~5 dial timeouts per attempt).
			DialerRetries: 1,
		}
		if c.PasswordFile != "" {
			b, err := os.ReadFile(c.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("cluster.redis.password_file: %w", err)
			}
			opt.Password = strings.TrimSpace(string(b))
		}
		if c.TLS {
			host := c.Addr
			if i := strings.LastIndexByte(host, ':'); i > 0 {
				host = strings.Trim(host[:i], "[]")
			}
			opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
		}
		return redis.NewClient(opt), nil
	})
}
