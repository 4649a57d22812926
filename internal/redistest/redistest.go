// Package redistest starts real redis-server processes for tests: a
// server of its own (with whatever configuration a test wants: a password,
// ACL users, maxmemory, TLS), a replica, sentinels, a cluster. Each runs on
// a free loopback port in a temporary folder and is stopped when the test
// ends. A test that needs a server skips, with a message, when
// redis-server is not installed.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Binary returns the redis-server binary, or skips the test when there is
// none.
func Binary(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server is not installed (Debian: apt-get install redis-server; .ci/run installs it)")
	}
	return bin
}

// Server is one redis-server (or sentinel) process.
type Server struct {
	tb   testing.TB
	Port int
	Dir  string
	args []string
	cmd  *exec.Cmd
	// Ping, when set, is how Start knows the server answers (a server
	// that wants TLS or credentials is asked so).
	ping func(ctx context.Context) error
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// FreePort returns a loopback port nobody listens on.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ClusterPort returns a free port whose cluster bus port (10000 above it)
// is free too: a cluster node listens on both.
func ClusterPort(tb testing.TB) int {
	tb.Helper()
	for range 100 {
		port := FreePort(tb)
		if port+10000 > 65535 {
			continue
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
			l.Close()
			return port
		}
	}
	tb.Fatal("no free port with a free cluster bus port")
	return 0
}

// Options change the server a test starts.
type Options struct {
	// Config lines added to the server's configuration file, e.g.
	// "maxmemory 2mb" or "user reader on >pw ~vista:* +@read".
	Config []string
	// Port is the port to listen on; 0 picks a free one.
	Port int
	// Ping overrides how the server is known to answer (TLS, ACLs).
	Ping func(ctx context.Context, addr string) error
	// Sentinel starts redis-server --sentinel.
	Sentinel bool
	// TLS, when set, has the server speak only TLS on its port.
	TLS *Certs
}

// Start starts a redis-server with o and waits until it answers.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	bin := Binary(tb)
	port := o.Port
	if port == 0 {
		port = FreePort(tb)
	}
	dir := tb.TempDir()
	portLine := "port " + strconv.Itoa(port)
	if o.TLS != nil {
		portLine = "port 0\ntls-port " + strconv.Itoa(port)
		o.Config = append(o.TLS.ServerConfig(), o.Config...)
		if o.Ping == nil {
			conf := o.TLS.ClientConfig(tb)
			o.Ping = func(ctx context.Context, addr string) error {
				c := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: conf, MaxRetries: -1})
				defer c.Close()
				return c.Ping(ctx).Err()
			}
		}
	}
	conf := []string{
		portLine,
		"bind 127.0.0.1",
		"dir " + dir,
		`save ""`,
		"appendonly no",
		"logfile " + filepath.Join(dir, "redis.log"),
	}
	conf = append(conf, o.Config...)
	file := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(file, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	args := []string{file}
	if o.Sentinel {
		args = append(args, "--sentinel")
	}
	s := &Server{tb: tb, Port: port, Dir: dir, args: append([]string{bin}, args...)}
	if o.Ping != nil {
		s.ping = func(ctx context.Context) error { return o.Ping(ctx, s.Addr()) }
	}
	s.start()
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.tb.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	ping := s.ping
	if ping == nil {
		ping = func(ctx context.Context) error {
			c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
			defer c.Close()
			err := c.Ping(ctx).Err()
			if err != nil && strings.Contains(err.Error(), "NOAUTH") || err != nil && strings.Contains(err.Error(), "WRONGPASS") {
				return nil // it answers; the test's client brings the credentials
			}
			return err
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ping(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server on %s does not answer: %v\n%s", s.Addr(), err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server; it may be started again with Restart.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a stopped server again, on the same port and folder.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start()
}

// Pause stops the process without ending it (SIGSTOP) until the returned
// function resumes it: a server that hangs.
func (s *Server) Pause() (resume func()) {
	s.cmd.Process.Signal(syscall.SIGSTOP)
	return func() { s.cmd.Process.Signal(syscall.SIGCONT) }
}

// Log returns the server's log, for a failure message.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client(tb testing.TB, o *redis.Options) *redis.Client {
	if o == nil {
		o = &redis.Options{}
	}
	o.Addr = s.Addr()
	c := redis.NewClient(o)
	tb.Cleanup(func() { c.Close() })
	return c
}

// Replicated is a master with a replica watched by three sentinels.
type Replicated struct {
	Master, Replica *Server
	Sentinels       []*Server
	Name            string // the master's name in the sentinels
}

// SentinelAddrs lists the sentinels' addresses.
func (r *Replicated) SentinelAddrs() []string {
	var out []string
	for _, s := range r.Sentinels {
		out = append(out, s.Addr())
	}
	return out
}

// StartReplicated starts a master, a replica and three sentinels that
// call the master down after a second without an answer.
func StartReplicated(tb testing.TB, masterConfig ...string) *Replicated {
	tb.Helper()
	r := &Replicated{Name: "vwmaster"}
	r.Master = Start(tb, Options{Config: masterConfig})
	r.Replica = Start(tb, Options{Config: append(append([]string{}, masterConfig...), "replicaof 127.0.0.1 "+strconv.Itoa(r.Master.Port))})
	for i := 0; i < 3; i++ {
		r.Sentinels = append(r.Sentinels, Start(tb, Options{Sentinel: true, Config: []string{
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", r.Name, r.Master.Port),
			"sentinel down-after-milliseconds " + r.Name + " 1000",
			"sentinel failover-timeout " + r.Name + " 5000",
			"sentinel parallel-syncs " + r.Name + " 1",
		}}))
	}
	r.WaitReplicated(tb)
	return r
}

// WaitReplicated waits until the replica is in sync with the master and the
// sentinels know the replica.
func (r *Replicated) WaitReplicated(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	rep := r.Replica.Client(tb, nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, _ := rep.Info(ctx, "replication").Result()
		synced := strings.Contains(info, "master_link_status:up")
		known := true
		for _, s := range r.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
			replicas, err := c.Replicas(ctx, r.Name).Result()
			c.Close()
			if err != nil || len(replicas) == 0 {
				known = false
			}
		}
		if synced && known {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the replica did not sync or the sentinels do not know it:\n%s", info)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MasterAddr asks a sentinel which server is the master now.
func (r *Replicated) MasterAddr(ctx context.Context) (string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: r.Sentinels[0].Addr()})
	defer c.Close()
	addr, err := c.GetMasterAddrByName(ctx, r.Name).Result()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(addr[0], addr[1]), nil
}

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
}

// Addrs lists the nodes' addresses.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr())
	}
	return out
}

// StartCluster starts n masters in cluster mode and gives them the slots,
// shared evenly, then waits until the cluster says it is ok.
// ports, when given, are the nodes' ports in order (see ClusterPort); the
// rest are free ones.
func StartCluster(tb testing.TB, n int, ports ...int) *Cluster {
	tb.Helper()
	c := &Cluster{}
	for i := 0; i < n; i++ {
		port := ClusterPort(tb)
		if i < len(ports) {
			port = ports[i]
		}
		c.Nodes = append(c.Nodes, Start(tb, Options{Port: port, Config: []string{
			"cluster-enabled yes",
			"cluster-config-file nodes.conf",
			"cluster-node-timeout 2000",
		}}))
	}
	ctx := context.Background()
	first := c.Nodes[0].Client(tb, nil)
	for i, node := range c.Nodes {
		cl := node.Client(tb, nil)
		lo, hi := i*16384/n, (i+1)*16384/n-1
		if err := cl.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			tb.Fatalf("cluster addslots on %s: %v", node.Addr(), err)
		}
		if i > 0 {
			if err := first.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(node.Port)).Err(); err != nil {
				tb.Fatalf("cluster meet: %v", err)
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, node := range c.Nodes {
			info, err := node.Client(tb, nil).ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			return c
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the cluster did not come up:\n%s", c.Nodes[0].Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
