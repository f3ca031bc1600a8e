package throttle

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Spec
		wantErr string
	}{
		{in: "10000*delay*100,20000*reject*100", want: Spec{10000, 100 * time.Millisecond, 20000, 100 * time.Millisecond}},
		{in: " 20M*reject*0 ", want: Spec{RejectUnits: 20 << 20}},
		{in: "3K*delay*5,", want: Spec{DelayUnits: 3 << 10, DelayWait: 5 * time.Millisecond}},
		{in: "0*delay*100", want: Spec{DelayWait: 100 * time.Millisecond}},
		{in: "", wantErr: "shouldn't be empty"},
		{in: " , ", wantErr: "shouldn't be empty"},
		{in: "100*delay", wantErr: "want <units>"},
		{in: "100*wait*10", wantErr: "neither delay nor reject"},
		{in: "1*delay*1,2*delay*2", wantErr: "duplicate 'delay'"},
		{in: "1*reject*1,2*reject*2", wantErr: "duplicate 'reject'"},
		{in: "-1*reject*1", wantErr: "unsigned"},
		{in: "10k*reject*1", wantErr: "unsigned"}, // upper-case suffixes only, as upstream
		{in: "99999999999999999999*reject*1", wantErr: "unsigned"},
		{in: "17592186044416M*reject*1", wantErr: "overflows"},
		{in: "1*reject*x", wantErr: "milliseconds"},
	} {
		got, err := Parse(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{in: "20000", want: 20000},
		{in: "2M", want: 2 << 20},
		{in: "1K*delay*10,4K*reject*0", want: 4 << 10},
		{in: "1K*delay*10", want: 0}, // valid, throttles nothing
		{in: "0", wantErr: true},
		{in: "0*reject*10", wantErr: true},
		{in: "x", wantErr: true},
	} {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestControllerWindow(t *testing.T) {
	// 8 partitions share 80 delays and 160 rejects a second: each replica
	// delays past 11 and rejects past 21.
	spec := Spec{DelayUnits: 80, DelayWait: 50 * time.Millisecond, RejectUnits: 160, RejectWait: 20 * time.Millisecond}
	c := NewController(spec, 8)
	sec := time.Unix(1_700_000_000, 0)
	var got []Outcome
	for i := range 25 {
		o, wait := c.Control(sec.Add(time.Duration(i)*time.Millisecond), 1, 0)
		got = append(got, o)
		switch o {
		case Delay:
			if wait != 50*time.Millisecond {
				t.Errorf("request %d: delay wait %v", i+1, wait)
			}
		case Reject:
			if wait != 20*time.Millisecond {
				t.Errorf("request %d: reject wait %v", i+1, wait)
			}
		}
	}
	for i, o := range got {
		want := Pass
		switch n := i + 1; {
		case n > 21:
			want = Reject
		case n > 11:
			want = Delay
		}
		if o != want {
			t.Errorf("request %d in the second: %v, want %v", i+1, o, want)
		}
	}
	// Rejected requests were taken back: the count stayed at 21, so one more
	// in the same second is still rejected, not counted beyond.
	if o, _ := c.Control(sec.Add(900*time.Millisecond), 1, 0); o != Reject {
		t.Errorf("request after rejects: %v", o)
	}
	// The next second starts over.
	if o, _ := c.Control(sec.Add(time.Second), 1, 0); o != Pass {
		t.Errorf("first request of the next second: %v", o)
	}
}

func TestControllerUnitsAndCaps(t *testing.T) {
	// By size: 1000 bytes a second on 1 partition rejects past 1001 bytes.
	c := NewController(Spec{RejectUnits: 1000, RejectWait: 400 * time.Millisecond}, 1)
	now := time.Unix(10, 0)
	if o, _ := c.Control(now, 600, 0); o != Pass {
		t.Fatalf("first 600 bytes: %v", o)
	}
	o, wait := c.Control(now, 600, 500*time.Millisecond)
	if o != Reject || wait != 250*time.Millisecond {
		t.Errorf("1200 bytes with a 500ms client timeout: %v %v, want reject after 250ms", o, wait)
	}
	if o, _ := c.Control(now, 400, 0); o != Pass {
		t.Errorf("the rejected 600 bytes were not taken back: %v", o)
	}
	// A spec with neither action never throttles.
	off := NewController(Spec{}, 4)
	for range 1000 {
		if o, _ := off.Control(now, 1, 0); o != Pass {
			t.Fatalf("disabled controller: %v", o)
		}
	}
}

func TestBucket(t *testing.T) {
	b := NewBucket(4000, 4) // 1000 bytes/s per replica, burst 1000
	now := time.Unix(100, 0)
	if !b.Admit(now) {
		t.Fatal("a full bucket refused a read")
	}
	b.Consume(now, 2500) // one large read borrows from the future
	if b.Admit(now.Add(time.Second)) {
		t.Error("admitted 1s later while still 500 bytes in debt")
	}
	if !b.Admit(now.Add(1600 * time.Millisecond)) {
		t.Error("refused once the debt was repaid")
	}
	// Refill never exceeds the burst.
	b.Consume(now.Add(1600*time.Millisecond), 0)
	if !b.Admit(now.Add(time.Hour)) {
		t.Fatal("refused after an hour")
	}
	b.Consume(now.Add(time.Hour), 1000)
	if b.Admit(now.Add(time.Hour)) {
		t.Error("the bucket held more than its burst")
	}
	// Time going backwards neither refills nor breaks it.
	if b.Admit(now) {
		t.Error("a clock step back refilled the bucket")
	}
}
