package main

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// TestFloorPairsFlushAndReceipt serves two answers and receives the
// relay's message for one of them, and one for an answer never served:
// only the pair counts, and the answer is the JSON the relay checks.
func TestFloorPairsFlushAndReceipt(t *testing.T) {
	f := newFloor()
	var seqs []string
	for range 2 {
		rec := httptest.NewRecorder()
		f.ServeHTTP(rec, httptest.NewRequest("GET", "/eventlat/floor", nil))
		var v struct{ Value []json.RawMessage }
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || len(v.Value) != floorRows {
			t.Fatalf("answer: %d rows, %v; want %d", len(v.Value), err, floorRows)
		}
		if n, _ := strconv.Atoi(rec.Header().Get("Content-Length")); n != rec.Body.Len() {
			t.Fatalf("Content-Length %d for %d bytes", n, rec.Body.Len())
		}
		seqs = append(seqs, rec.Header().Get("X-Floor-Seq"))
	}
	if seqs[0] == seqs[1] {
		t.Fatalf("two answers with one seq %s", seqs[0])
	}
	f.mu.Lock()
	at := f.flushed[2].Add(3 * time.Millisecond)
	f.mu.Unlock()
	f.receive(seqs[1], at)
	f.receive("99", at)
	f.receive("not a seq", at)
	if got := f.samples(); len(got) != 1 || got[0] != 3*time.Millisecond {
		t.Fatalf("samples %v, want [3ms]", got)
	}
}
