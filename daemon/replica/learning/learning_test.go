package learning

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const sig = 7<<32 | 1

// env drives one Learner through a script. cur is the ticket of the latest action;
// prev the one before it.
type env struct {
	l         *Learner
	cur, prev Ticket
}

// step is one event at a time since t0, with the Ready it must produce (see
// describe) and the phase after it.
type step struct {
	at    time.Duration
	ev    func(e *env, now time.Time) Ready
	want  string
	phase Phase
}

func tick(e *env, now time.Time) Ready { return e.l.Tick(now) }

func answer(a Answer) func(*env, time.Time) Ready {
	return func(e *env, now time.Time) Ready { return e.l.LearnAnswered(e.cur, a, now) }
}

var (
	cache      = answer(Answer{Kind: AnswerCache, Mutations: []*pacifica.Mutation{{Decree: 5}}, PrepareStart: 6})
	checkpoint = answer(Answer{Kind: AnswerCheckpoint, Decree: 40, Files: []File{{Name: "000001.sst", Size: 10}}})
	notNow     = answer(Answer{Kind: AnswerRetry})
	refused    = answer(Answer{Kind: AnswerRefused, Err: "ERR_OBJECT_NOT_FOUND"})
)

func learnFailed(e *env, now time.Time) Ready  { return e.l.LearnFailed(e.cur, now) }
func copied(e *env, now time.Time) Ready       { return e.l.CopyFinished(e.cur, now) }
func copyFailed(e *env, now time.Time) Ready   { return e.l.CopyFailed(e.cur, now) }
func installed(e *env, now time.Time) Ready    { return e.l.Installed(e.cur, true, now) }
func installFail(e *env, now time.Time) Ready  { return e.l.Installed(e.cur, false, now) }
func caughtUp(e *env, now time.Time) Ready     { return e.l.Applied(e.cur, true, now) }
func behind(e *env, now time.Time) Ready       { return e.l.Applied(e.cur, false, now) }
func notified(e *env, now time.Time) Ready     { return e.l.NotifyAnswered(e.cur, now) }
func notifyFailed(e *env, now time.Time) Ready { return e.l.NotifyFailed(e.cur, now) }

func role(r Role) func(*env, time.Time) Ready {
	return func(e *env, now time.Time) Ready { return e.l.ConfigChanged(r, now) }
}

// withTicket feeds ev with another ticket: an outcome of an earlier action or round.
func withTicket(pick func(e *env) Ticket, ev func(*env, time.Time) Ready) func(*env, time.Time) Ready {
	return func(e *env, now time.Time) Ready {
		saved := e.cur
		e.cur = pick(e)
		defer func() { e.cur = saved }()
		return ev(e, now)
	}
}

func previous(e *env) Ticket   { return e.prev }
func otherRound(e *env) Ticket { return Ticket{Sig: sig + 1, Seq: e.cur.Seq} }

// describe renders a Ready: its action, then "wake=<offset from t0>", "done: why",
// "abandoned: why" or "stale".
func describe(rd Ready) string {
	var parts []string
	switch {
	case rd.Ask != nil:
		parts = append(parts, fmt.Sprintf("ask(deadline=%v)", rd.Ask.Deadline.Sub(t0)))
	case rd.Copy != nil:
		parts = append(parts, fmt.Sprintf("copy(%d,%d files)", rd.Copy.Decree, len(rd.Copy.Files)))
	case rd.Install != nil:
		parts = append(parts, fmt.Sprintf("install(%d)", rd.Install.Decree))
	case rd.Apply != nil:
		parts = append(parts, fmt.Sprintf("apply(%d,from %d)", len(rd.Apply.Mutations), rd.Apply.PrepareStart))
	case rd.Notify != nil:
		parts = append(parts, fmt.Sprintf("notify#%d(deadline=%v)", rd.Notify.Attempt, rd.Notify.Deadline.Sub(t0)))
	}
	if !rd.Wake.IsZero() {
		parts = append(parts, fmt.Sprintf("wake=%v", rd.Wake.Sub(t0)))
	}
	if rd.End != nil {
		if rd.End.Done {
			parts = append(parts, "done: "+rd.End.Reason)
		} else {
			parts = append(parts, "abandoned: "+rd.End.Reason)
		}
	}
	if rd.Stale {
		parts = append(parts, "stale")
	}
	return strings.Join(parts, " ")
}

// ticketOf is the ticket of the Ready's action, if it has one.
func ticketOf(rd Ready) (Ticket, bool) {
	switch {
	case rd.Ask != nil:
		return rd.Ask.Ticket, true
	case rd.Copy != nil:
		return rd.Copy.Ticket, true
	case rd.Install != nil:
		return rd.Install.Ticket, true
	case rd.Apply != nil:
		return rd.Apply.Ticket, true
	case rd.Notify != nil:
		return rd.Notify.Ticket, true
	}
	return Ticket{}, false
}

func TestLearner(t *testing.T) {
	opts := Options{} // the defaults: 500 ms, 60 s, 3 s, 1 s, 5 attempts
	tests := []struct {
		name  string
		steps []step
	}{
		{"mutations from the cache, then done", []step{
			{10 * time.Millisecond, cache, "apply(1,from 6)", Applying},
			{10 * time.Millisecond, caughtUp, "notify#1(deadline=3.01s) wake=3.01s", Notifying},
			{20 * time.Millisecond, notified, "done: the primary took the completion notice", Done},
		}},
		{"not caught up yet: ask again after the retry delay", []step{
			{0, cache, "apply(1,from 6)", Applying},
			{0, behind, "wake=500ms", Waiting},
			{499 * time.Millisecond, tick, "wake=500ms", Waiting},
			{500 * time.Millisecond, tick, "ask(deadline=1m0.5s) wake=1m0.5s", Asking},
			{600 * time.Millisecond, cache, "apply(1,from 6)", Applying},
		}},
		{"a failed learn request is retried, with no limit", []step{
			{time.Second, learnFailed, "wake=1.5s", Waiting},
			{1500 * time.Millisecond, tick, "ask(deadline=1m1.5s) wake=1m1.5s", Asking},
			{2 * time.Second, learnFailed, "wake=2.5s", Waiting},
			{2500 * time.Millisecond, tick, "ask(deadline=1m2.5s) wake=1m2.5s", Asking},
			{3 * time.Second, learnFailed, "wake=3.5s", Waiting},
			{3500 * time.Millisecond, tick, "ask(deadline=1m3.5s) wake=1m3.5s", Asking},
		}},
		{"a learn request with no answer times out; its late answer is stale", []step{
			{59 * time.Second, tick, "wake=1m0s", Asking},
			{60 * time.Second, tick, "wake=1m0.5s", Waiting},
			{60100 * time.Millisecond, cache, "wake=1m0.5s stale", Waiting},
			{60500 * time.Millisecond, tick, "ask(deadline=2m0.5s) wake=2m0.5s", Asking},
			{61 * time.Second, withTicket(previous, cache), "wake=2m0.5s stale", Asking},
			{61 * time.Second, checkpoint, "copy(40,1 files)", Copying},
		}},
		{"the primary still reconciling: ask again", []step{
			{0, notNow, "wake=500ms", Waiting},
			{500 * time.Millisecond, tick, "ask(deadline=1m0.5s) wake=1m0.5s", Asking},
		}},
		{"refused by the primary: give up", []step{
			{0, refused, "abandoned: the primary refused: ERR_OBJECT_NOT_FOUND", Abandoned},
			{time.Minute, tick, "stale", Abandoned},
			{time.Minute, learnFailed, "stale", Abandoned},
		}},
		{"checkpoint copied and installed, then mutations", []step{
			{0, checkpoint, "copy(40,1 files)", Copying},
			{time.Hour, tick, "", Copying}, // a copy has no deadline of its own (each chunk has)
			{time.Hour, copied, "install(40)", Installing},
			{time.Hour, installed, "wake=1h0m0.5s", Waiting},
			{time.Hour + 500*time.Millisecond, tick, "ask(deadline=1h1m0.5s) wake=1h1m0.5s", Asking},
			{time.Hour + time.Second, cache, "apply(1,from 6)", Applying},
			{time.Hour + time.Second, caughtUp, "notify#1(deadline=1h0m4s) wake=1h0m4s", Notifying},
		}},
		{"a copy failing midway: ask again", []step{
			{0, checkpoint, "copy(40,1 files)", Copying},
			{10 * time.Second, copyFailed, "wake=10.5s", Waiting},
			{10 * time.Second, withTicket(previous, copied), "wake=10.5s stale", Waiting},
			{10500 * time.Millisecond, tick, "ask(deadline=1m10.5s) wake=1m10.5s", Asking},
			{11 * time.Second, checkpoint, "copy(40,1 files)", Copying},
			{12 * time.Second, copied, "install(40)", Installing},
		}},
		{"an install failing: ask again", []step{
			{0, checkpoint, "copy(40,1 files)", Copying},
			{time.Second, copied, "install(40)", Installing},
			{time.Second, installFail, "wake=1.5s", Waiting},
			{1500 * time.Millisecond, tick, "ask(deadline=1m1.5s) wake=1m1.5s", Asking},
		}},
		{"the completion notice is retried until answered", []step{
			{0, cache, "apply(1,from 6)", Applying},
			{0, caughtUp, "notify#1(deadline=3s) wake=3s", Notifying},
			{time.Second, notifyFailed, "wake=2s", NotifyPause},
			{1999 * time.Millisecond, tick, "wake=2s", NotifyPause},
			{2 * time.Second, tick, "notify#2(deadline=5s) wake=5s", Notifying},
			{5 * time.Second, tick, "wake=6s", NotifyPause}, // no answer in time
			{5500 * time.Millisecond, withTicket(previous, notified), "wake=6s stale", NotifyPause},
			{6 * time.Second, tick, "notify#3(deadline=9s) wake=9s", Notifying},
			{7 * time.Second, notified, "done: the primary took the completion notice", Done},
			{7 * time.Second, notifyFailed, "stale", Done},
		}},
		{"the completion notice given up after five attempts", []step{
			{0, cache, "apply(1,from 6)", Applying},
			{0, caughtUp, "notify#1(deadline=3s) wake=3s", Notifying},
			{0, notifyFailed, "wake=1s", NotifyPause},
			{time.Second, tick, "notify#2(deadline=4s) wake=4s", Notifying},
			{time.Second, notifyFailed, "wake=2s", NotifyPause},
			{2 * time.Second, tick, "notify#3(deadline=5s) wake=5s", Notifying},
			{2 * time.Second, notifyFailed, "wake=3s", NotifyPause},
			{3 * time.Second, tick, "notify#4(deadline=6s) wake=6s", Notifying},
			{3 * time.Second, notifyFailed, "wake=4s", NotifyPause},
			{4 * time.Second, tick, "notify#5(deadline=7s) wake=7s", Notifying},
			{7 * time.Second, tick, "abandoned: the primary did not take the completion notice (5 attempts)", Abandoned},
			{8 * time.Second, tick, "stale", Abandoned},
		}},
		{"outcomes of another round are stale", []step{
			{0, withTicket(otherRound, cache), "wake=1m0s stale", Asking},
			{0, checkpoint, "copy(40,1 files)", Copying},
			{0, withTicket(otherRound, copyFailed), "stale", Copying},
			{0, withTicket(otherRound, copied), "stale", Copying},
			{0, withTicket(previous, copied), "stale", Copying},
			{0, copied, "install(40)", Installing},
			{0, copied, "stale", Installing}, // a copy outcome while installing
		}},
		{"an outcome of the wrong kind is stale", []step{
			{0, notified, "wake=1m0s stale", Asking},
			{0, caughtUp, "wake=1m0s stale", Asking},
			{0, cache, "apply(1,from 6)", Applying},
			{0, cache, "stale", Applying}, // a duplicate answer
		}},
		{"abandoned when the replica is no longer a learner", []step{
			{0, checkpoint, "copy(40,1 files)", Copying},
			{time.Second, role(StillLearner), "", Copying},
			{2 * time.Second, role(Gone), "abandoned: the replica is no longer a learner", Abandoned},
			{3 * time.Second, copied, "stale", Abandoned},
			{3 * time.Second, role(Gone), "stale", Abandoned},
		}},
		{"abandoned while waiting to ask again", []step{
			{0, learnFailed, "wake=500ms", Waiting},
			{100 * time.Millisecond, role(Gone), "abandoned: the replica is no longer a learner", Abandoned},
			{500 * time.Millisecond, tick, "stale", Abandoned},
		}},
		{"done when the replica became a member while notifying", []step{
			{0, cache, "apply(1,from 6)", Applying},
			{0, caughtUp, "notify#1(deadline=3s) wake=3s", Notifying},
			{time.Second, role(Member), "done: the replica is a member", Done},
			{time.Second, notified, "stale", Done},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, rd := Start(sig, opts, t0)
			if got, want := describe(rd), "ask(deadline=1m0s) wake=1m0s"; got != want {
				t.Fatalf("Start: %q, want %q", got, want)
			}
			e := &env{l: l}
			e.cur, _ = ticketOf(rd)
			for i, s := range tc.steps {
				rd := s.ev(e, t0.Add(s.at))
				if got := describe(rd); got != s.want {
					t.Fatalf("step %d (at %v): %q, want %q", i, s.at, got, s.want)
				}
				if l.Phase() != s.phase {
					t.Fatalf("step %d (at %v): phase %v, want %v", i, s.at, l.Phase(), s.phase)
				}
				if tk, ok := ticketOf(rd); ok {
					if tk == e.cur {
						t.Fatalf("step %d: action reuses ticket %+v", i, tk)
					}
					if tk.Sig != sig {
						t.Fatalf("step %d: ticket of round %d, want %d", i, tk.Sig, sig)
					}
					e.prev, e.cur = e.cur, tk
				}
			}
			if l.Ended() != (l.Reason() != "") {
				t.Fatalf("ended %v with reason %q", l.Ended(), l.Reason())
			}
		})
	}
}

// Options override the defaults.
func TestLearnerOptions(t *testing.T) {
	opts := Options{RetryDelay: time.Second, LearnTimeout: 10 * time.Second, NotifyTimeout: time.Second, NotifyDelay: 2 * time.Second, NotifyAttempts: 1}
	l, rd := Start(sig, opts, t0)
	if got, want := describe(rd), "ask(deadline=10s) wake=10s"; got != want {
		t.Fatalf("Start: %q, want %q", got, want)
	}
	if got, want := describe(l.LearnFailed(rd.Ask.Ticket, t0)), "wake=1s"; got != want {
		t.Fatalf("LearnFailed: %q, want %q", got, want)
	}
	rd = l.Tick(t0.Add(time.Second))
	rd = l.LearnAnswered(rd.Ask.Ticket, Answer{Kind: AnswerCache, PrepareStart: 1}, t0.Add(time.Second))
	rd = l.Applied(rd.Apply.Ticket, true, t0.Add(time.Second))
	if got, want := describe(rd), "notify#1(deadline=2s) wake=2s"; got != want {
		t.Fatalf("Applied: %q, want %q", got, want)
	}
	if got, want := describe(l.NotifyFailed(rd.Notify.Ticket, t0.Add(time.Second))), "abandoned: the primary did not take the completion notice (1 attempts)"; got != want {
		t.Fatalf("NotifyFailed: %q, want %q", got, want)
	}
}

func TestPhaseString(t *testing.T) {
	if got := NotifyPause.String(); got != "notify-pause" {
		t.Errorf("NotifyPause: %q", got)
	}
	if got := Phase(42).String(); got != "phase(42)" {
		t.Errorf("Phase(42): %q", got)
	}
}
