package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// span is one script call as MONITOR shows it, in Unix microseconds on
// Redis's clock (the host's, as the benchmark's): Redis 7.0 feeds a
// command to its monitors as it calls it, the EVALSHA first and then each
// command the script calls, so the EVALSHA's time is when the script
// began and the time of its last command about when it ended.
type span struct{ start, end int64 }

// monitor follows Redis's MONITOR feed and notes, for each session event a
// script published, the script call that published it. It is for -split
// alone: MONITOR makes Redis format every command a script calls, which
// lengthens the very scripts it times.
type monitor struct {
	channel string

	mu   sync.Mutex
	pubs map[row]*span // by the event's session id and seats
}

func newMonitor(channel string) *monitor {
	return &monitor{channel: channel, pubs: map[row]*span{}}
}

// run reads the feed until ctx ends.
func (m *monitor) run(ctx context.Context, addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); c.Close() }()
	if _, err := c.Write([]byte("MONITOR\r\n")); err != nil {
		return err
	}
	r := bufio.NewReaderSize(c, 1<<20)
	if line, err := r.ReadBytes('\n'); err != nil || !bytes.HasPrefix(line, []byte("+OK")) {
		return fmt.Errorf("monitor: %q %v", line, err)
	}
	var cur *span // the script being called, if any
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		ts, src, cmd, args, ok := monitorLine(line)
		if !ok {
			continue
		}
		if src != "lua" {
			cur = nil
			if cmd == "EVALSHA" || cmd == "EVAL" || cmd == "EVALSHA_RO" {
				cur = &span{start: ts, end: ts}
			}
			continue
		}
		if cur == nil {
			continue
		}
		m.mu.Lock()
		cur.end = ts
		if (cmd == "PUBLISH" || cmd == "SPUBLISH") && bytes.HasPrefix(args, []byte(`"`+m.channel+`" `)) {
			if r, ok := eventRow(args); ok {
				m.pubs[r] = cur
			}
		}
		m.mu.Unlock()
	}
}

func (m *monitor) lookup(id string, seats int) (span, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.pubs[row{id, seats}]
	if !ok {
		return span{}, false
	}
	return *s, true
}

// monitorLine reads `+1700000000.123456 [0 lua] "PUBLISH" "ch" "..."`:
// the time in microseconds, the source ("lua" for a script's command), the
// command in capitals and the rest.
func monitorLine(line []byte) (ts int64, src, cmd string, args []byte, ok bool) {
	line = bytes.TrimPrefix(bytes.TrimRight(line, "\r\n"), []byte("+"))
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return 0, "", "", nil, false
	}
	sec, frac, found := bytes.Cut(line[:sp], []byte("."))
	s, err1 := strconv.ParseInt(string(sec), 10, 64)
	us, err2 := strconv.ParseInt(string(frac), 10, 64)
	if !found || err1 != nil || err2 != nil {
		return 0, "", "", nil, false
	}
	rest := line[sp+1:]
	open, end := bytes.IndexByte(rest, '['), bytes.IndexByte(rest, ']')
	if open != 0 || end < 0 {
		return 0, "", "", nil, false
	}
	who := rest[1:end]
	if i := bytes.IndexByte(who, ' '); i >= 0 {
		who = who[i+1:]
	}
	rest = bytes.TrimPrefix(rest[end+1:], []byte(" \""))
	q := bytes.IndexByte(rest, '"')
	if q < 0 {
		return 0, "", "", nil, false
	}
	return s*1_000_000 + us, string(who), string(bytes.ToUpper(rest[:q])), bytes.TrimPrefix(rest[q+1:], []byte(" ")), true
}

// eventRow reads the id and seats_available of an event's JSON as MONITOR
// quotes it (each " as \").
func eventRow(args []byte) (row, bool) {
	const idKey, seatsKey = `\"id\":\"`, `\"seats_available\":`
	i := bytes.Index(args, []byte(idKey))
	if i < 0 {
		return row{}, false
	}
	id := args[i+len(idKey):]
	j := bytes.Index(id, []byte(`\"`))
	if j < 0 {
		return row{}, false
	}
	k := bytes.Index(args, []byte(seatsKey))
	if k < 0 {
		return row{}, false
	}
	n, ok := leadingInt(args[k+len(seatsKey):])
	return row{id: string(id[:j]), seats: n}, ok
}

// splitOf divides a sample's latency at the script that published its
// event: before it began (the warmer: reading, decoding and diffing the
// answer, its loop, and sending the script), the script up to its last
// command, and after that (the script's end, Redis writing the message
// out, the subscriber reading it).
func splitOf(s sample, sp span) (warmer, script, after time.Duration) {
	us := func(d int64) time.Duration { return time.Duration(d) * time.Microsecond }
	return us(sp.start - s.answered.UnixMicro()), us(sp.end - sp.start), us(s.received.UnixMicro() - sp.end)
}
