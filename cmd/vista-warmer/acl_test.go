package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vista-warmer/vista-warmer/internal/redistest"
	"github.com/vista-warmer/vista-warmer/internal/testkit"
	"github.com/vista-warmer/vista-warmer/warmer"
)

// A user whose ACL denies a command the warmer needs stops the start: exit
// status 1 and one line naming the command and its categories. The
// README's recipe of old (+@all -@dangerous -type) is among them.
func TestDeniedCommandStopsTheStart(t *testing.T) {
	tests := []struct {
		rules string
		want  string
	}{
		// Every command denied, in one line: one restart fixes them all.
		{"+@all -@dangerous -type", "commands INFO (@slow @dangerous), ROLE (@admin @fast @dangerous), TYPE (@keyspace @read @fast) to this user (ACL): grant them (ACL SETUSER <user> +info +role +type)"},
		{"+@all -type", "command TYPE (@keyspace @read @fast)"},
		{"+@all -hset", "command HSET (@write @hash @fast)"},
		{"+@all -xadd", "command XADD (@write @stream @fast)"},
		{"+@all -@scripting", "SCRIPT|LOAD (@slow)"},
	}
	var users []string
	for i, tt := range tests {
		users = append(users, "user u"+string(rune('a'+i))+" on >pw ~* &* "+tt.rules)
	}
	srv := redistest.Start(t, redistest.Options{Config: users})
	for i, tt := range tests {
		t.Run(tt.rules, func(t *testing.T) {
			logs := &syncBuffer{}
			m := &Main{Stdout: io.Discard, Stderr: logs, LookupEnv: env(nil)}
			url := "redis://u" + string(rune('a'+i)) + ":pw@" + srv.Addr()
			if err := m.ParseFlags(t.Context(), []string{"--demo", "--redis-url", url, "--listen", "127.0.0.1:0"}); err != nil {
				t.Fatal(err)
			}
			err := m.Run(context.Background())
			m.Close()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run as a user with %s = %v, want the %s named", tt.rules, err, tt.want)
			}
			if code := m.fail(err); code != 1 {
				t.Errorf("exit status %d, want 1", code)
			}
			if n := strings.Count(logs.String(), "ERR "); n != 1 {
				t.Errorf("%d error lines, want one:\n%s", n, logs)
			}
			if strings.Contains(logs.String(), ":pw@") {
				t.Errorf("the password reached the log")
			}
		})
	}
}

// docs/operations.md's ACL line for the warmer grants every command the warmer
// sends: a command the warmer starts to use fails here until the line
// (and warmer.Commands, which Preflight tries) names it.
func TestDocsACLGrantsEveryCommand(t *testing.T) {
	line := docsACL(t, "vista-warmer", "WARMER_PASSWORD", "pw")
	granted := map[string]bool{}
	for _, tok := range strings.Fields(line) {
		if name, ok := strings.CutPrefix(tok, "+"); ok {
			granted[name] = true
		}
	}
	for _, cmd := range warmer.Commands {
		if !granted[cmd] && !(cmd == "ping" && granted["@connection"]) {
			t.Errorf("docs/operations.md's ACL line for the warmer does not grant %s: %s", cmd, line)
		}
	}
}

// A command denied while the warmer runs (an operator tightened the ACL)
// makes /healthz 503 naming it, and the log says so once a minute.
func TestDeniedCommandWhileRunning(t *testing.T) {
	m, logs, setUser := runningAsUser(t)
	setUser("-hset")
	denied := len(logs.String())
	waitDenied(t, m, "HSET", 15*time.Second)
	time.Sleep(5 * time.Second) // a heartbeat and writes a second, each denied
	if n := strings.Count(logs.String()[denied:], "a command is denied"); n != 1 {
		t.Errorf("the denial was logged %d times, want once:\n%s", n, logs.String()[denied:])
	}
	if code, body := get(t, m, "/readyz"); code == http.StatusOK {
		t.Errorf("/readyz = %d %s while every write is denied, want not ready", code, body)
	}
	// Granted again: healthy and ready again as soon as the warmer's
	// next try of its commands finds none denied, without waiting out
	// the ten seconds between a denied step's tries.
	setUser("+hset")
	granted := len(logs.String())
	testkit.Eventually(t, deniedRetry-2*time.Second, "/healthz and /readyz 200 once HSET is granted again", func() bool {
		hc, _ := get(t, m, "/healthz")
		rc, _ := get(t, m, "/readyz")
		return hc == http.StatusOK && rc == http.StatusOK
	})
	if n := strings.Count(logs.String()[granted:], "no command is denied any more"); n != 1 {
		t.Errorf("the grant was logged %d times, want once:\n%s", n, logs.String()[granted:])
	}
	// Denied again within the minute: news again, logged at once.
	again := len(logs.String())
	setUser("-hset")
	testkit.Eventually(t, 15*time.Second, "the second denial logged", func() bool {
		return strings.Contains(logs.String()[again:], "a command is denied")
	})
}

// A command only the cache's writes send (XADD, in the write script)
// denied while the heartbeat's HSET goes through: the denial is said for
// as long as it lasts, not taken back because other writes go through;
// granted, it is over within seconds.
func TestDeniedWriteCommandIsSaidWhileItLasts(t *testing.T) {
	m, logs, setUser := runningAsUser(t)
	setUser("-xadd")
	denied := len(logs.String())
	waitDenied(t, m, "XADD", 30*time.Second)
	healthy := 0
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if code, _ := get(t, m, "/healthz"); code == http.StatusOK {
			healthy++
		}
	}
	if healthy > 0 || strings.Contains(logs.String()[denied:], "no command is denied any more") {
		t.Errorf("/healthz said 200 at %d looks in 20 s while XADD was denied, or the log said the denial was over:\n%s", healthy, logs.String()[denied:])
	}
	setUser("+xadd")
	testkit.Eventually(t, deniedRetry-2*time.Second, "/healthz and /readyz 200 once XADD is granted again", func() bool {
		hc, _ := get(t, m, "/healthz")
		rc, _ := get(t, m, "/readyz")
		return hc == http.StatusOK && rc == http.StatusOK
	})
}

// runningAsUser starts the demo warmer as ACL user u, granted every
// command, and returns it with setUser, which changes u's rules as an
// operator would (e.g. "-hset").
func runningAsUser(t *testing.T) (*Main, *syncBuffer, func(rule string)) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{Config: []string{"user u on >pw ~* &* +@all"}})
	m, logs := MustStart(t, []string{"--demo", "--redis-url", "redis://u:pw@" + srv.Addr(), "--listen", "127.0.0.1:0",
		"--lease-ttl", "2s"}, nil)
	waitReady(t, m, logs)
	admin := srv.Client(t, &redis.Options{})
	return m, logs, func(rule string) {
		t.Helper()
		if err := admin.Do(context.Background(), "ACL", "SETUSER", "u", rule).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// waitDenied waits until /healthz is 503 naming the command denied.
func waitDenied(t *testing.T, m *Main, command string, within time.Duration) {
	t.Helper()
	testkit.Eventually(t, within, "/healthz 503 naming "+command, func() bool {
		code, body := get(t, m, "/healthz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "command "+command)
	})
}

// deniedRetry is how long the warmer waits between tries of a step while
// a command is denied (warmer.deniedRetry).
const deniedRetry = 10 * time.Second
