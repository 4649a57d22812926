package vista

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkDecodeWindowAnswer decodes a window query's answer of 333
// sessions, as the near sweep gets every near interval: the part of the
// way from Vista's answer to the event that grows with the window.
func BenchmarkDecodeWindowAnswer(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"odata.metadata":"x","value":[`)
	for i := range 333 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"ID":"10%02d-%d","SeatsAvailable":%d,"SoldoutStatus":0,"Status":"0"}`, i%27, 600000+i, i%200)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		p, err := decodePage("sessions", body)
		if err != nil {
			b.Fatal(err)
		}
		seats, bad := decodeSeats(p.rows, 0)
		if len(seats) != 333 || len(bad) != 0 {
			b.Fatalf("%d seats, %v", len(seats), bad)
		}
	}
}
