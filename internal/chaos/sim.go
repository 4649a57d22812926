// The simulated Vista, cmd/vistasim, run as a process: its start, its
// control API and what it lists now (the truth); and Seats, which keeps its
// sales going through a run.

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sim is the simulated Vista, cmd/vistasim, running as a process.
type Sim struct {
	Addr   string
	cmd    *exec.Cmd
	client *http.Client
}

func startSim(tb testing.TB, bin, dir string) *Sim {
	tb.Helper()
	logf, err := os.Create(filepath.Join(dir, "vistasim.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--seed", "7",
		"--cinemas", "4", "--screens", "6", "--shows", "5", "--days", "5")
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start vistasim: %v", err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			addr <- strings.TrimSpace(sc.Text())
		}
		close(addr)
		io.Copy(io.Discard, out)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			tb.Fatal("vistasim ended before it listened")
		}
		return &Sim{Addr: a, cmd: cmd, client: &http.Client{Timeout: 5 * time.Second}}
	case <-time.After(10 * time.Second):
		tb.Fatal("vistasim does not say where it listens")
	}
	return nil
}

// URL is the base URL the warmers are given.
func (s *Sim) URL() string { return "http://" + s.Addr + "/WSVistaWebClient/" }

// Post calls the control API.
func (s *Sim) Post(ctx context.Context, pathAndQuery string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.Addr+pathAndQuery, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("POST %s: %s: %s", pathAndQuery, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// Truth asks the simulator what it lists now.
func (s *Sim) Truth(ctx context.Context) (Truth, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+"/control/sessions", nil)
	if err != nil {
		return Truth{}, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return Truth{}, err
	}
	defer resp.Body.Close()
	t := Truth{At: time.Now(), Seats: map[string]int{}, Status: map[string]string{}, Showtime: map[string]time.Time{}}
	dec := json.NewDecoder(resp.Body)
	for {
		var row struct {
			ID       string    `json:"id"`
			Seats    int       `json:"seats_available"`
			Status   string    `json:"status"`
			Showtime time.Time `json:"showtime"`
		}
		if err := dec.Decode(&row); err == io.EOF {
			break
		} else if err != nil {
			return Truth{}, fmt.Errorf("truth: %w", err)
		}
		t.Seats[row.ID], t.Status[row.ID], t.Showtime[row.ID] = row.Seats, row.Status, row.Showtime
	}
	return t, nil
}

// nearSessions lists the open sessions whose showtime is within d of now,
// either side, sorted.
func nearSessions(ctx context.Context, sim *Sim, d time.Duration) []string {
	t, err := sim.Truth(ctx)
	if err != nil {
		return nil
	}
	var ids []string
	now := time.Now()
	for id, st := range t.Showtime {
		if t.Status[id] == "O" && st.Sub(now).Abs() < d {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Seats changes the seats of a random open session within the hour every
// period until ctx ends: sales never stop. A session is never set back to
// a value it was set to before: a value that comes back (A, B, A) would
// look, from outside, as if the change to B had never been seen.
func Seats(ctx context.Context, w *World, seed uint64, period time.Duration) {
	rng := rand.New(rand.NewPCG(seed, 0x7365617473)) // "seats"
	t := time.NewTicker(period)
	defer t.Stop()
	var ids []string
	used := map[string]map[int]bool{}
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if i%10 == 0 || len(ids) == 0 {
			ids = nearSessions(cctx, w.Sim, time.Hour)
		}
		if len(ids) > 0 {
			id := ids[rng.IntN(len(ids))]
			if used[id] == nil {
				used[id] = map[int]bool{}
			}
			n := rng.IntN(300)
			for j := 0; used[id][n] && j < 300; j++ {
				n = (n + 1) % 300
			}
			used[id][n] = true
			w.Sim.Post(cctx, "/control/seats?id="+url.QueryEscape(id)+"&n="+strconv.Itoa(n))
		}
		cancel()
	}
}
