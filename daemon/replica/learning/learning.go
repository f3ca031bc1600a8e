// Package learning is a learner's progress through one round of PacificA learning,
// as a state machine with no I/O: no goroutines, locks, clocks or sockets.
//
// A round starts when the primary invites this replica (with a signature that
// fences the round). The learner asks the primary what it misses; the primary
// answers with committed mutations from its cache (the learner applies them) or a
// checkpoint of its store (the learner copies the files, installs them, and asks
// again). Once the learner holds every decree before the primary's prepares reach
// it, it tells the primary that learning finished, and the primary asks the meta to
// make it a secondary.
//
// The caller feeds events in - the clock (Tick), a learn request answered or
// failed, a copy finished or failed, a checkpoint installed, mutations applied, a
// completion notice answered or failed, the replica's role changing - and carries
// out the Ready each returns: send a request, start a copy, install, apply, notify,
// call Tick again at a given time, or stop. Time comes in as an argument, so every
// retry and timeout is a deterministic function of the events, which is how the
// tests exercise them.
//
// Each action carries a Ticket; its outcome must come back with the same ticket.
// An outcome for an earlier request, or an earlier round, is ignored (Ready.Stale):
// a request that timed out here may still be answered, and a replica invited again
// under a new signature starts a new Learner while the old round's copy may still
// be running.
package learning

import (
	"fmt"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
)

// Phase is where a round is.
type Phase int

// Phases of a round.
const (
	Asking      Phase = iota + 1 // a learn request is out
	Waiting                      // waiting to ask again
	Copying                      // copying the primary's checkpoint
	Installing                   // installing the copied checkpoint
	Applying                     // applying the mutations the primary sent
	Notifying                    // a completion notice is out
	NotifyPause                  // waiting to send the completion notice again
	Done                         // the primary took the completion notice, or the replica is a member
	Abandoned                    // given up (see Learner.Reason)
)

var phaseNames = [...]string{"", "asking", "waiting", "copying", "installing", "applying", "notifying", "notify-pause", "done", "abandoned"}

func (p Phase) String() string {
	if p > 0 && int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("phase(%d)", int(p))
}

// Options are a round's delays and limits. Zero values take the defaults.
type Options struct {
	RetryDelay     time.Duration // before asking again after anything but success: 500 ms
	LearnTimeout   time.Duration // for one learn request, which may wait for a checkpoint: 60 s
	NotifyTimeout  time.Duration // for one completion notice: 3 s (the replica's RPC timeout)
	NotifyDelay    time.Duration // between completion notices: 1 s
	NotifyAttempts int           // completion notices before giving up: 5
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.RetryDelay, 500*time.Millisecond)
	def(&o.LearnTimeout, 60*time.Second)
	def(&o.NotifyTimeout, 3*time.Second)
	def(&o.NotifyDelay, time.Second)
	if o.NotifyAttempts <= 0 {
		o.NotifyAttempts = 5
	}
	return o
}

// Ticket names one action of one round; its outcome is reported with it.
type Ticket struct {
	Sig int64  // the round: the signature the primary invited the learner with
	Seq uint64 // the action within the round
}

// File is one file of the primary's checkpoint.
type File struct {
	Name   string // relative, slash-separated
	Size   int64
	CRC32C int32
}

// AnswerKind is what the primary made of a learn request.
type AnswerKind int

// Answers to a learn request.
const (
	AnswerRetry      AnswerKind = iota + 1 // not now (the primary is still reconciling): ask again
	AnswerRefused                          // not the primary's learner (any more): give up
	AnswerCache                            // committed mutations to apply
	AnswerCheckpoint                       // a checkpoint to copy and install
)

// Answer is the primary's answer to a learn request.
type Answer struct {
	Kind         AnswerKind
	Err          string               // AnswerRefused: the error the primary gave
	Mutations    []*pacifica.Mutation // AnswerCache
	PrepareStart int64                // AnswerCache: the first decree that comes through prepares
	Decree       int64                // AnswerCheckpoint: the checkpoint's decree
	Files        []File               // AnswerCheckpoint
}

// Role is what the replica is now, as far as this round is concerned.
type Role int

// Roles reported by ConfigChanged.
const (
	StillLearner Role = iota // learning goes on
	Member                   // a secondary (or primary) now: nothing left to learn or tell
	Gone                     // closing, failed or removed: stop
)

// Ask is a learn request to send; its answer (or failure) comes back with Ticket.
type Ask struct {
	Ticket   Ticket
	Deadline time.Time // the request is given up at this time
}

// Copy is a checkpoint to copy from the primary.
type Copy struct {
	Ticket Ticket
	Decree int64
	Files  []File
}

// Install is a copied checkpoint to install as the replica's store.
type Install struct {
	Ticket Ticket
	Decree int64
}

// Apply is mutations to commit and make durable.
type Apply struct {
	Ticket       Ticket
	Mutations    []*pacifica.Mutation
	PrepareStart int64
}

// Notify is a completion notice to send to the primary.
type Notify struct {
	Ticket   Ticket
	Attempt  int       // 1 for the first notice
	Deadline time.Time // the notice is given up at this time
}

// End says the round is over.
type End struct {
	Done   bool   // learning finished (otherwise it was abandoned)
	Reason string // why
}

// Ready is what the caller must do after an event. At most one of Ask, Copy,
// Install, Apply and Notify is set.
type Ready struct {
	Ask     *Ask
	Copy    *Copy
	Install *Install
	Apply   *Apply
	Notify  *Notify
	// Wake is when Tick must be called next (a retry or a deadline is due); zero when
	// nothing is due. Every Ready carries it, so the latest one is what counts.
	Wake time.Time
	// End is set once, when the round ends; the Learner takes no more events.
	End *End
	// Stale reports an outcome of an earlier action or round, or an event after
	// the end: it was ignored.
	Stale bool
}

// Learner is one round of learning. It is not safe for concurrent use: the
// replica's executor owns it.
type Learner struct {
	opts     Options
	sig      int64
	phase    Phase
	seq      uint64    // the ticket of the action in progress (or the last one)
	due      time.Time // Asking/Notifying: the deadline; Waiting/NotifyPause: when to go on
	notified int       // completion notices sent
	decree   int64     // Copying: the decree of the checkpoint being copied
	reason   string
}

// Start begins a round for the invitation with signature sig: the first learn
// request goes out at once.
func Start(sig int64, opts Options, now time.Time) (*Learner, Ready) {
	l := &Learner{opts: opts.withDefaults(), sig: sig}
	return l, l.ask(now)
}

// Phase is where the round is.
func (l *Learner) Phase() Phase { return l.phase }

// Ended reports whether the round is over.
func (l *Learner) Ended() bool { return l.phase == Done || l.phase == Abandoned }

// Reason is why the round ended ("" while it goes on).
func (l *Learner) Reason() string { return l.reason }

// Tick is the clock: a retry whose delay is over goes out, and a request past its
// deadline counts as failed.
func (l *Learner) Tick(now time.Time) Ready {
	if l.Ended() {
		return l.stale()
	}
	if l.due.IsZero() || now.Before(l.due) {
		return l.wait()
	}
	switch l.phase {
	case Waiting:
		return l.ask(now)
	case Asking:
		// No answer in time: the request's own deadline ends it too, and its late
		// outcome finds the round waiting (stale).
		return l.retry(now)
	case NotifyPause:
		return l.notify(now)
	case Notifying:
		return l.notifyFailed(now)
	}
	return l.wait()
}

// LearnAnswered is the primary's answer to the learn request t.
func (l *Learner) LearnAnswered(t Ticket, a Answer, now time.Time) Ready {
	if !l.expects(t, Asking) {
		return l.stale()
	}
	switch a.Kind {
	case AnswerRefused:
		return l.end(Abandoned, "the primary refused: "+a.Err)
	case AnswerCache:
		l.next(Applying, time.Time{})
		return Ready{Apply: &Apply{Ticket: l.ticket(), Mutations: a.Mutations, PrepareStart: a.PrepareStart}}
	case AnswerCheckpoint:
		l.next(Copying, time.Time{})
		l.decree = a.Decree
		return Ready{Copy: &Copy{Ticket: l.ticket(), Decree: a.Decree, Files: a.Files}}
	}
	return l.retry(now)
}

// LearnFailed is the learn request t failing (no answer: the network, a timeout,
// or an answer that could not be used).
func (l *Learner) LearnFailed(t Ticket, now time.Time) Ready {
	if !l.expects(t, Asking) {
		return l.stale()
	}
	return l.retry(now)
}

// CopyFinished is the checkpoint of copy t fully copied: install it.
func (l *Learner) CopyFinished(t Ticket, now time.Time) Ready {
	if !l.expects(t, Copying) {
		return l.stale()
	}
	l.next(Installing, time.Time{})
	return Ready{Install: &Install{Ticket: l.ticket(), Decree: l.decree}}
}

// CopyFailed is copy t failing midway: ask again (the primary may hand out a newer
// checkpoint, or mutations by now).
func (l *Learner) CopyFailed(t Ticket, now time.Time) Ready {
	if !l.expects(t, Copying) {
		return l.stale()
	}
	return l.retry(now)
}

// Installed is the outcome of install t. Either way the learner asks again: after a
// checkpoint come the mutations the primary committed since.
func (l *Learner) Installed(t Ticket, ok bool, now time.Time) Ready {
	if !l.expects(t, Installing) {
		return l.stale()
	}
	return l.retry(now)
}

// Applied is the outcome of apply t: caughtUp when the replica now holds every
// decree before the primary's prepares (it then tells the primary), otherwise it
// asks again.
func (l *Learner) Applied(t Ticket, caughtUp bool, now time.Time) Ready {
	if !l.expects(t, Applying) {
		return l.stale()
	}
	if !caughtUp {
		return l.retry(now)
	}
	return l.notify(now)
}

// NotifyAnswered is the primary taking completion notice t: learning is done.
func (l *Learner) NotifyAnswered(t Ticket, now time.Time) Ready {
	if !l.expects(t, Notifying) {
		return l.stale()
	}
	return l.end(Done, "the primary took the completion notice")
}

// NotifyFailed is completion notice t failing or refused: send it again after a
// pause, up to the attempt limit.
func (l *Learner) NotifyFailed(t Ticket, now time.Time) Ready {
	if !l.expects(t, Notifying) {
		return l.stale()
	}
	return l.notifyFailed(now)
}

// ConfigChanged is the replica's role changing under the round: a member has
// nothing left to learn, a replica that is gone stops.
func (l *Learner) ConfigChanged(r Role, now time.Time) Ready {
	if l.Ended() {
		return l.stale()
	}
	switch r {
	case Member:
		return l.end(Done, "the replica is a member")
	case Gone:
		return l.end(Abandoned, "the replica is no longer a learner")
	}
	return l.wait()
}

// expects reports whether t is the outcome the round waits for in phase.
func (l *Learner) expects(t Ticket, phase Phase) bool {
	return l.phase == phase && t == l.ticket()
}

func (l *Learner) ticket() Ticket { return Ticket{Sig: l.sig, Seq: l.seq} }

// next moves to phase with a new ticket.
func (l *Learner) next(phase Phase, due time.Time) {
	l.phase, l.due = phase, due
	l.seq++
}

func (l *Learner) ask(now time.Time) Ready {
	l.next(Asking, now.Add(l.opts.LearnTimeout))
	return Ready{Ask: &Ask{Ticket: l.ticket(), Deadline: l.due}, Wake: l.due}
}

// retry waits before the next learn request.
func (l *Learner) retry(now time.Time) Ready {
	l.phase, l.due = Waiting, now.Add(l.opts.RetryDelay)
	return l.wait()
}

func (l *Learner) notify(now time.Time) Ready {
	l.next(Notifying, now.Add(l.opts.NotifyTimeout))
	l.notified++
	return Ready{Notify: &Notify{Ticket: l.ticket(), Attempt: l.notified, Deadline: l.due}, Wake: l.due}
}

func (l *Learner) notifyFailed(now time.Time) Ready {
	if l.notified >= l.opts.NotifyAttempts {
		return l.end(Abandoned, fmt.Sprintf("the primary did not take the completion notice (%d attempts)", l.notified))
	}
	l.phase, l.due = NotifyPause, now.Add(l.opts.NotifyDelay)
	return l.wait()
}

func (l *Learner) end(phase Phase, reason string) Ready {
	l.phase, l.due, l.reason = phase, time.Time{}, reason
	return Ready{End: &End{Done: phase == Done, Reason: reason}}
}

// wait is a Ready with nothing to do now; Wake still says when Tick is due, so
// the caller can keep only the latest Ready's.
func (l *Learner) wait() Ready { return Ready{Wake: l.due} }

func (l *Learner) stale() Ready {
	rd := l.wait()
	rd.Stale = true
	return rd
}
