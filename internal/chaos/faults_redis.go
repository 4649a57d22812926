// The nemesis's faults on Redis: kills, sleeps, pauses, a full memory,
// flushes, a rotated password and failovers, and the wait for the replica
// to follow again.

package chaos

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
)

// master is the server that is the master now, and a client of it.
func (n *Nemesis) master(ctx context.Context) (*redistest.Server, *redis.Client, error) {
	s, err := n.w.Master(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s, n.w.NodeClient(s.Addr()), nil
}

func (n *Nemesis) redisKill(f *fault) (func(), error) {
	ctx := context.Background()
	s, c, err := n.master(ctx)
	if err != nil {
		return nil, err
	}
	c.Close()
	s.Stop() // SIGKILL
	return func() {
		s.Restart()
		if n.w.Repl != nil || !n.w.Options().AOF {
			n.rec.MarkLost()
		}
		if n.w.Repl != nil {
			n.waitReplicated(20 * time.Second)
		}
	}, nil
}

func (n *Nemesis) debugSleep(f *fault) (func(), error) {
	ctx := context.Background()
	_, c, err := n.master(ctx)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	secs := strconv.FormatFloat(f.Dur.Seconds(), 'f', 1, 64)
	go func() {
		defer close(done)
		// The reply comes when the sleep ends: the client waits longer.
		cctx, cancel := context.WithTimeout(ctx, f.Dur+10*time.Second)
		defer cancel()
		c.Do(cctx, "DEBUG", "SLEEP", secs)
		c.Close()
	}()
	if n.w.Repl != nil {
		n.rec.MarkLost()
	}
	return func() {
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
		if n.w.Repl != nil {
			n.waitReplicated(20 * time.Second)
		}
	}, nil
}

func (n *Nemesis) clientPause(f *fault, mode string) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, c, err := n.master(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// CLIENT UNPAUSE would itself be paused under ALL: the pause is given
	// its end.
	if err := c.Do(ctx, "CLIENT", "PAUSE", f.Dur.Milliseconds(), mode).Err(); err != nil {
		return nil, err
	}
	if n.w.Repl == nil {
		return nil, nil
	}
	// Under WRITE too: it holds PUBLISH, and with it the sentinels' hello
	// messages on their link to the master, so they call it down.
	n.rec.MarkLost()
	return func() { n.waitReplicated(20 * time.Second) }, nil
}

func (n *Nemesis) maxmemory(f *fault, policy string) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, c, err := n.master(ctx)
	if err != nil {
		return nil, err
	}
	c.Close()
	info, err := n.w.NodeClient(s.Addr()).InfoMap(ctx, "memory").Result()
	if err != nil {
		return nil, err
	}
	mem := info["Memory"]
	used, _ := strconv.ParseInt(mem["used_memory"], 10, 64)
	startup, _ := strconv.ParseInt(mem["used_memory_startup"], 10, 64)
	// Full: every write refused. Half the data, not just under what Redis
	// uses: Redis leaves its AOF and replication buffers out of the count
	// it holds against maxmemory, and a limit 5% under used_memory let
	// the heartbeat through for a whole fault (seed 20261203, single).
	limit := startup + (used-startup)/2
	if policy != "noeviction" {
		limit = startup + (used-startup)*6/10 // evicts about 40% of the data
	}
	c = n.w.NodeClient(s.Addr())
	defer c.Close()
	if err := c.ConfigSet(ctx, "maxmemory-policy", policy).Err(); err != nil {
		return nil, err
	}
	if err := c.ConfigSet(ctx, "maxmemory", strconv.FormatInt(limit, 10)).Err(); err != nil {
		return nil, err
	}
	n.w.Logf("maxmemory %d (used %d, startup %d) %s", limit, used, startup, policy)
	if policy != "noeviction" {
		n.rec.MarkLost()
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c := n.w.NodeClient(s.Addr())
		defer c.Close()
		c.ConfigSet(ctx, "maxmemory", "0")
		c.ConfigSet(ctx, "maxmemory-policy", "noeviction")
	}, nil
}

func (n *Nemesis) flushAll(f *fault) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := n.rdb.FlushAll(ctx).Err(); err != nil {
		return nil, err
	}
	n.rec.MarkLost()
	return nil, nil
}

func (n *Nemesis) scriptFlush(f *fault) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return nil, n.rdb.ScriptFlush(ctx).Err()
}

// password rotates the warmers' password and drops their connections,
// so that they must log in again and cannot until it is restored.
func (n *Nemesis) password(f *fault) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := n.rdb.ConfigSet(ctx, "requirepass", rotatedPass).Err(); err != nil {
		return nil, err
	}
	n.rdb.Do(ctx, "CLIENT", "KILL", "USER", "default")
	n.rotated = true
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.rdb.ConfigSet(ctx, "requirepass", warmerPassword)
		n.rotated = false
		for _, x := range n.pending {
			n.restart(x)
		}
		n.pending = nil
	}, nil
}

func (n *Nemesis) failover(f *fault) (func(), error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	before, _ := n.w.Repl.MasterAddr(ctx)
	s := redis.NewSentinelClient(&redis.Options{Addr: n.w.Repl.Sentinels[int(f.param%3)].Addr()})
	defer s.Close()
	if err := s.Failover(ctx, n.w.Repl.Name).Err(); err != nil {
		return nil, err
	}
	n.rec.MarkLost()
	return func() {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if after, err := n.w.Repl.MasterAddr(context.Background()); err == nil && after != before {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		n.waitReplicated(20 * time.Second)
	}, nil
}

// waitReplicated waits, at most d, until the replica follows the master
// with its link up: the next fault then starts from a world that has a
// replica to fail over to.
func (n *Nemesis) waitReplicated(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := n.w.Master(ctx)
		if err == nil {
			for _, s := range []*redistest.Server{n.w.Repl.Master, n.w.Repl.Replica} {
				if s == m {
					continue
				}
				c := n.w.NodeClient(s.Addr())
				info, _ := c.Info(ctx, "replication").Result()
				c.Close()
				if strings.Contains(info, "role:slave") && strings.Contains(info, "master_port:"+strconv.Itoa(m.Port)) &&
					strings.Contains(info, "master_link_status:up") {
					cancel()
					return
				}
			}
		}
		cancel()
		time.Sleep(250 * time.Millisecond)
	}
	n.w.Logf("the replica did not follow the master within %v", d)
}
