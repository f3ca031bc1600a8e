package throttle

import (
	"testing"
	"time"
)

// FuzzParse feeds arbitrary env values (set by any admin, stored by the meta
// server, parsed by every replica) to both parsers: they must not panic, and
// whatever they accept must drive a controller and a bucket without panicking.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{"10000*delay*100,20000*reject*100", "20M*reject*0", "3K*delay*5,", "", "1*delay", "18446744073709551615*reject*1", "20000", "0"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		now := time.Unix(1_700_000_000, 0)
		if spec, err := Parse(v); err == nil {
			c := NewController(spec, 8)
			for i := range 3 {
				c.Control(now, uint64(i)<<62, time.Second)
			}
		}
		if rate, err := ParseRate(v); err == nil {
			b := NewBucket(rate, 8)
			b.Admit(now)
			b.Consume(now, 1<<63)
			b.Admit(now.Add(time.Hour))
		}
	})
}
