package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedactor(t *testing.T) {
	tests := []struct {
		secrets []string
		in      string
		want    string
	}{
		{[]string{"s3cret-token"}, "token=s3cret-token ok", "token=[redacted] ok"},
		{[]string{"s3cret-token", "hunter2pw"}, "a hunter2pw b s3cret-token", "a [redacted] b [redacted]"},
		{[]string{"abc"}, "abc is too short to hunt", "abc is too short to hunt"},
		{[]string{""}, "nothing", "nothing"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		r := newRedactor(&out, tt.secrets...)
		n, err := r.Write([]byte(tt.in))
		if err != nil || n != len(tt.in) || out.String() != tt.want {
			t.Errorf("redactor(%q).Write(%q) = %d, %v, wrote %q; want %d, %q", tt.secrets, tt.in, n, err, out.String(), len(tt.in), tt.want)
		}
	}
}

// TestRedisLogger: go-redis's own lines go through slog, and a stop in
// progress is not logged.
func TestRedisLogger(t *testing.T) {
	var out bytes.Buffer
	setRedisLogger(slog.New(slog.NewTextHandler(&out, nil)))
	t.Cleanup(func() { redisLog.Store(nil) })

	l := redisLogger{}
	l.Printf(context.Background(), "redis: sentinel: %s", "failover")
	l.Printf(context.Background(), "redis: sentinel: discovered new sentinel=%q for master=%q", "a", "m")
	l.Printf(context.Background(), "redis: sentinel: new master=%q addr=%q", "m", "127.0.0.1:1")
	l.Printf(context.Background(), "redis: discarding bad conn: %v", context.Canceled)
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s", 5, "refused")
	got := out.String()
	if !strings.Contains(got, `level=WARN msg="sentinel: failover" component=go-redis`) {
		t.Errorf("go-redis line logged as %q", got)
	}
	if !strings.Contains(got, `level=INFO msg="sentinel: new master=`) || strings.Contains(got, "discovered") {
		t.Errorf("sentinel notices logged as %q, want a new master at info, the chatter at debug", got)
	}
	if strings.Contains(got, "context canceled") || strings.Contains(got, "refused") {
		t.Errorf("a context.Canceled or dial line was logged at info: %q", got)
	}
}

func TestNewLogger(t *testing.T) {
	var text, js bytes.Buffer
	newLogger(&text, "text", slog.LevelInfo, false).Debug("hidden")
	newLogger(&text, "text", slog.LevelInfo, false).Info("shown", "n", 1)
	newLogger(&js, "json", slog.LevelDebug, false).Debug("took", "d", 1500*time.Millisecond)
	if strings.Contains(text.String(), "hidden") || !strings.Contains(text.String(), "INF shown n=1") {
		t.Errorf("text log = %q", text.String())
	}
	if strings.Contains(text.String(), "\x1b[") {
		t.Errorf("text log without colour has escape codes: %q", text.String())
	}
	if !strings.Contains(js.String(), `"msg":"took","d":"1.5s"`) {
		t.Errorf("json log = %q", js.String())
	}
}

// fakeCluster answers like a Redis with cluster mode on: INFO says so, and
// every other command is refused, as HELLO and CLIENT are by old servers.
func fakeCluster(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					if strings.EqualFold(args[0], "INFO") {
						info := "# Cluster\r\ncluster_enabled:1\r\n"
						fmt.Fprintf(c, "$%d\r\n%s\r\n", len(info), info)
						continue
					}
					fmt.Fprintf(c, "-ERR unknown command '%s'\r\n", args[0])
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, errors.New("not an array")
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	args := make([]string, 0, n)
	for range n {
		if _, err := r.ReadString('\n'); err != nil { // $len
			return nil, err
		}
		arg, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		args = append(args, strings.TrimSuffix(arg, "\r\n"))
	}
	if len(args) == 0 {
		return nil, errors.New("empty command")
	}
	return args, nil
}

// TestOpenRedisCluster: a cluster is found at connect time; there a prefix
// without a hash tag is a usage error (exit status 2) and one with a tag
// gets a cluster client.
func TestOpenRedisCluster(t *testing.T) {
	addr := fakeCluster(t)
	log := slog.New(slog.DiscardHandler)
	opts := &redis.Options{Addr: addr, Protocol: 2}

	_, err := openRedis(t.Context(), opts, "vista", log)
	var ue *usageError
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), `--prefix: "vista" has no hash tag`) {
		t.Errorf("openRedis(cluster, vista) = %v, want a --prefix usage error", err)
	}

	rdb, err := openRedis(t.Context(), opts, "{vista}", log)
	if err != nil {
		t.Fatalf("openRedis(cluster, {vista}) = %v", err)
	}
	defer rdb.Close()
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Errorf("openRedis(cluster, {vista}) = %T, want *redis.ClusterClient", rdb)
	}
}

// TestOpenRedisDown: a Redis that does not answer yet is not fatal.
func TestOpenRedisDown(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	rdb, err := openRedis(t.Context(), &redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}, "vista", log)
	if err != nil {
		t.Fatalf("openRedis(down) = %v, want a client that keeps trying", err)
	}
	rdb.Close()
	if !strings.Contains(out.String(), "redis is not answering yet") {
		t.Errorf("openRedis(down) logged %q", out.String())
	}
}
