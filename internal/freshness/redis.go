package freshness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vista-warmer/vista-warmer/internal/outside"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server of our own, on a free loopback port in a
// temporary directory, without persistence.
type Redis struct {
	Addr string
	cmd  *exec.Cmd
	dir  string
}

// StartRedis starts redis-server (found on PATH) and waits until it answers.
func StartRedis(ctx context.Context) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("start redis: %w (install redis-server)", err)
	}
	dir, err := os.MkdirTemp("", "freshness-redis-")
	if err != nil {
		return nil, fmt.Errorf("start redis: %w", err)
	}
	port, err := outside.FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis: %w", err)
	}
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start redis: %w", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer rdb.Close()
	for i := 0; ; i++ {
		if err = rdb.Ping(ctx).Err(); err == nil {
			return r, nil
		}
		if i == 100 || ctx.Err() != nil {
			r.Close()
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			return nil, fmt.Errorf("start redis: no answer on %s: %w\n%s", r.Addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops the server and removes its directory.
func (r *Redis) Close() error {
	err := r.cmd.Process.Kill()
	r.cmd.Wait()
	return errors.Join(err, os.RemoveAll(r.dir))
}

// countHook counts the commands a client sends, each command of a
// pipeline or transaction (MULTI and EXEC included) as one.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// serverCommands returns how many commands the server has run, every
// command called from a script included, INFO itself left out.
func serverCommands(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, fmt.Errorf("info commandstats: %w", err)
	}
	return sumCalls(info), nil
}

// sumCalls adds up the calls of INFO commandstats lines such as
// "cmdstat_hset:calls=12,usec=30,...", leaving INFO out.
func sumCalls(info string) int64 {
	var n int64
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		if v, err := strconv.ParseInt(calls, 10, 64); err == nil {
			n += v
		}
	}
	return n
}
