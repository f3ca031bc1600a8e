package replica

import (
	"reflect"
	"testing"
	"time"
)

// The executor's timers come due in time order, equal times in the order they
// were set, and only once.
func TestExecutorTimers(t *testing.T) {
	var p partition
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.at(t0.Add(3*time.Second), "c")
	p.at(t0.Add(time.Second), "a")
	p.at(t0.Add(3*time.Second), "d")
	p.at(t0.Add(time.Second), "b")
	if got := p.due(t0); len(got) != 0 {
		t.Fatalf("due before any time: %v", got)
	}
	if got, want := p.due(t0.Add(2*time.Second)), []any{"a", "b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("due at 2s: %v, want %v", got, want)
	}
	if got, want := p.due(t0.Add(3*time.Second)), []any{"c", "d"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("due at 3s: %v, want %v", got, want)
	}
	if got := p.due(t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("due again: %v", got)
	}
}
