package repl

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	prompt "github.com/c-bata/go-prompt"
	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/pegasusgo/pegasus/internal/waitfor"
)

// TestReadSplitsKeys checks what go-prompt is handed for reads holding several
// keys: one key or run of text per Read, nothing past an Enter until the next
// Setup.
func TestReadSplitsKeys(t *testing.T) {
	in := &ttyInput{}
	in.pending = []byte("get k1 s1\rget k1 s1\r\x1b[A\x1b[Bls\x7f\tx\r\n" + pasteStart + "a\tb\r\nc" + pasteEnd + "\x03é")
	var got []string
	for range 40 {
		b, err := in.Read()
		if err != nil {
			if !in.held {
				break
			}
			got = append(got, "|") // the command runs; go-prompt sets up again
			in.held = false
			continue
		}
		got = append(got, string(b))
	}
	want := []string{"get k1 s1", "\r", "|", "get k1 s1", "\r", "|", "\x1b[A", "\x1b[B", "ls", "\x7f", "\t", "x", "\r", "|",
		"a b", "\r", "|", "c", "\x03", "é"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("reads:\n got %q\nwant %q", got, want)
	}
}

// TestReadWaitsForCutSequences checks that an escape sequence or character
// cut by a read is held for its rest, and that a lone Escape still gets out.
func TestReadWaitsForCutSequences(t *testing.T) {
	in := &ttyInput{pending: []byte("ab\x1b[")}
	if b, err := in.Read(); err != nil || string(b) != "ab" {
		t.Fatalf("first read %q %v", b, err)
	}
	if b, err := in.Read(); err == nil {
		t.Fatalf("a cut sequence was handed out: %q", b)
	}
	in.pending = append(in.pending, 'A')
	if b, err := in.Read(); err != nil || string(b) != "\x1b[A" {
		t.Fatalf("joined sequence %q %v", b, err)
	}
	in.pending = []byte("\xc3")
	if b, err := in.Read(); err == nil {
		t.Fatalf("half a character was handed out: %q", b)
	}
	in.pending = append(in.pending, 0xa9)
	if b, err := in.Read(); err != nil || string(b) != "é" {
		t.Fatalf("joined character %q %v", b, err)
	}
	in.pending = []byte{0x1b}
	if prompt.GetKey(in.pending) != prompt.Escape {
		t.Fatal("Escape is not a key")
	}
	waitfor.Until(t, 5*time.Second, 10*time.Millisecond, "a lone Escape to be handed out", func() (bool, string) {
		b, err := in.Read()
		return err == nil && string(b) == "\x1b", fmt.Sprintf("%q %v", b, err)
	})
}

// The helper process: a prompt on its own terminal whose commands are
//
//	echo X   prints X
//	slow X   takes a second, then prints X
//	block    waits until cancelled
//	ask      reads an answer line and prints it
//
// each printing "begin <line>" and "end <line>" around what it does.
const helperEnv = "PEGASUS_REPL_TEST_HELPER"

func TestREPLHelper(t *testing.T) {
	history := os.Getenv(helperEnv)
	if history == "" {
		t.Skip("run by the terminal tests")
	}
	var exit atomic.Bool
	var answers *bufio.Reader
	execLine := func(ctx context.Context, line string) {
		fmt.Printf("begin %s\n", line)
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "slow":
			// The command's own duration: it stands for a scan that takes a second.
			select {
			case <-time.After(time.Second):
				fmt.Println(strings.Join(f[1:], " "))
			case <-ctx.Done():
				fmt.Println("cancelled")
			}
		case f[0] == "block":
			<-ctx.Done()
			fmt.Println("cancelled")
		case f[0] == "ask":
			fmt.Print("question? ")
			a, err := answers.ReadString('\n')
			fmt.Printf("answer %q %v\n", a, err)
		case f[0] == "echo":
			fmt.Println(strings.Join(f[1:], " "))
		case f[0] == "exit":
			exit.Store(true)
		default:
			fmt.Println("unknown command")
		}
		fmt.Printf("end %s\n", line)
	}
	complete := func(prompt.Document) []prompt.Suggest { return nil }
	setInput := func(r io.Reader) { answers = bufio.NewReader(r) }
	// As pegasus_shell's main: SIGTERM cancels the running command.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := run(ctx, execLine, complete, exit.Load, setInput, history); err != nil {
		fmt.Println("run:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// term is the test's side of the helper's terminal.
type term struct {
	t       *testing.T
	tty     *os.File
	cmd     *exec.Cmd
	history string
	exited  chan struct{}
	waitErr error

	mu  sync.Mutex
	buf bytes.Buffer
}

func startHelper(t *testing.T) *term {
	t.Helper()
	return startHelperSized(t, &pty.Winsize{Rows: 40, Cols: 200})
}

func startHelperSized(t *testing.T, size *pty.Winsize) *term {
	t.Helper()
	tm := &term{t: t, history: filepath.Join(t.TempDir(), "history"), exited: make(chan struct{})}
	cmd := exec.Command(os.Args[0], "-test.run=^TestREPLHelper$")
	cmd.Env = append(os.Environ(), helperEnv+"="+tm.history, "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, size)
	if err != nil {
		t.Fatal(err)
	}
	tm.tty, tm.cmd = tty, cmd
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(tm, tty)
	}()
	go func() {
		tm.waitErr = cmd.Wait()
		close(tm.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-tm.exited:
		default:
			cmd.Process.Kill()
			<-tm.exited
		}
		tty.Close()
		<-copied
	})
	tm.waitFor(0, ">>> ")
	return tm
}

func (tm *term) Write(p []byte) (int, error) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.buf.Write(p)
}

// ansi matches the terminal control sequences go-prompt draws with.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r`)

// text is what the screen shows, without control sequences.
func (tm *term) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return ansi.ReplaceAllString(tm.buf.String(), "")
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := tm.tty.Write([]byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

// waitFor waits until the text after offset from shows s, returning where it
// ends.
func (tm *term) waitFor(from int, s string) int {
	tm.t.Helper()
	end := -1
	waitfor.Until(tm.t, 30*time.Second, 20*time.Millisecond, fmt.Sprintf("the screen to show %q", s), func() (bool, string) {
		all := tm.text()
		if i := strings.Index(all[min(from, len(all)):], s); i >= 0 {
			end = from + i + len(s)
			return true, ""
		}
		return false, fmt.Sprintf("the screen shows:\n%s", all[min(from, len(all)):])
	})
	return end
}

// quit leaves with Ctrl-D and checks the helper ended well.
func (tm *term) quit() {
	tm.t.Helper()
	tm.send("\x04")
	select {
	case <-tm.exited:
		if tm.waitErr != nil {
			tm.t.Fatalf("helper exit: %v\n%s", tm.waitErr, tm.text())
		}
	case <-time.After(15 * time.Second):
		tm.t.Fatalf("Ctrl-D did not end the prompt; screen:\n%s", tm.text())
	}
}

// checkRanInOrder checks that each line showed after a prompt, then ran once
// with its own output, in order, and that no command ran besides.
func (tm *term) checkRanInOrder(from int, lines []string, outputs []string) int {
	tm.t.Helper()
	all := tm.text()
	pos := from
	for i, l := range lines {
		seq := []string{">>> " + l + "\n", "begin " + l + "\n" + outputs[i] + "end " + l + "\n"}
		for _, s := range seq {
			j := strings.Index(all[pos:], s)
			if j < 0 {
				tm.t.Fatalf("line %d %q: %q does not follow; screen from there:\n%s", i, l, s, all[pos:])
			}
			pos += j + len(s)
		}
		if n := strings.Count(all[from:], "begin "+l+"\n"); n != 1 {
			tm.t.Errorf("line %q ran %d times", l, n)
		}
	}
	if n, want := strings.Count(all[from:], "begin "), len(lines); n != want {
		tm.t.Errorf("%d commands ran, want %d; screen:\n%s", n, want, all[from:])
	}
	return pos
}

func (tm *term) checkHistory(lines []string) {
	tm.t.Helper()
	b, err := os.ReadFile(tm.history)
	if err != nil {
		tm.t.Fatal(err)
	}
	if got, want := string(b), strings.Join(lines, "\n")+"\n"; got != want {
		tm.t.Errorf("history:\n%s\nwant:\n%s", got, want)
	}
}

// TestPasteRunsEachLine pastes a 20-line block, with commands that take a
// second among quick ones, in one write, as a terminal without bracketed paste
// sends it; then the same as a bracketed paste.
func TestPasteRunsEachLine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	tm := startHelper(t)
	var lines, outputs []string
	for i := range 20 {
		l := fmt.Sprintf("echo line %d", i)
		if i%7 == 3 {
			l = fmt.Sprintf("slow line %d", i)
		}
		lines = append(lines, l)
		outputs = append(outputs, fmt.Sprintf("line %d\n", i))
	}
	tm.send(strings.Join(lines, "\r") + "\r")
	tm.waitFor(0, "end "+lines[19]+"\n")
	pos := tm.checkRanInOrder(0, lines, outputs)

	pasted := []string{"echo bracketed\t1", "slow bracketed 2", "echo bracketed 3"}
	tm.send(pasteStart + strings.Join(pasted, "\r\n") + "\r\n" + pasteEnd)
	tm.waitFor(pos, "end echo bracketed 3\n")
	tabless := []string{"echo bracketed 1", "slow bracketed 2", "echo bracketed 3"}
	tm.checkRanInOrder(pos, tabless, []string{"bracketed 1\n", "bracketed 2\n", "bracketed 3\n"})
	tm.quit()
	tm.checkHistory(append(lines, tabless...))
}

// TestTypeAhead types lines, one key at a time, while a command runs: they do
// not show while it runs, then each runs after its own prompt.
func TestTypeAhead(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	tm := startHelper(t)
	tm.send("slow first\r")
	pos := tm.waitFor(0, "begin slow first\n")
	ahead := []string{"echo second", "slow third", "echo fourth"}
	for _, l := range ahead {
		for _, c := range l + "\r" {
			tm.send(string(c))
		}
	}
	end := tm.waitFor(pos, "end slow first\n")
	if strings.Contains(tm.text()[pos:end], "second") {
		t.Errorf("keys typed ahead were echoed into the running command's output:\n%s", tm.text()[pos:end])
	}
	tm.waitFor(end, "end echo fourth\n")
	lines := append([]string{"slow first"}, ahead...)
	tm.checkRanInOrder(0, lines, []string{"first\n", "second\n", "third\n", "fourth\n"})
	tm.quit()
	tm.checkHistory(lines)
}

// TestCtrlC checks that Ctrl-C cancels a running command and drops what was
// typed ahead, clears the line at the prompt, and that the prompt then goes on.
func TestCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	tm := startHelper(t)
	tm.send("block\r")
	pos := tm.waitFor(0, "begin block\n")
	tm.send("echo dropped\r")
	tm.send("\x03")
	pos = tm.waitFor(pos, "cancelled\nend block\n")
	pos = tm.waitFor(pos, ">>> ")
	tm.send("echo half")
	pos = tm.waitFor(pos, "echo half")
	tm.send("\x03") // at the prompt: clears the line
	tm.send("echo after\r")
	tm.waitFor(pos, "end echo after\n")
	all := tm.text()
	if strings.Contains(all, "begin echo dropped") || strings.Contains(all, "begin echo half") {
		t.Errorf("a dropped line ran:\n%s", all)
	}
	tm.quit()
	tm.checkHistory([]string{"block", "echo after"})
}

// TestUnsizedTerminal runs commands on a terminal that reports no size, as a
// pseudo-terminal nobody sized does: go-prompt divided by its width of 0.
func TestUnsizedTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	tm := startHelperSized(t, &pty.Winsize{})
	tm.send("echo one\r")
	pos := tm.waitFor(0, "end echo one\n")
	tm.send("echo two\r")
	tm.waitFor(pos, "end echo two\n")
	tm.quit()
}

// TestSIGTERMDuringCommand stops the shell with SIGTERM while a command runs:
// the command is cancelled, the shell ends, and the terminal has its echo and
// line editing back.
func TestSIGTERMDuringCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	tm := startHelper(t)
	tm.send("block\r")
	tm.waitFor(0, "begin block\n")
	if err := tm.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tm.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("the shell did not end after SIGTERM; screen:\n%s", tm.text())
	}
	tm.waitFor(0, "cancelled\nend block\n")
	// The master side reads the terminal's settings, which the shell left.
	attrs, err := unix.IoctlGetTermios(int(tm.tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Lflag&unix.ECHO == 0 || attrs.Lflag&unix.ICANON == 0 {
		t.Errorf("after SIGTERM the terminal has echo=%v canonical=%v, want both restored",
			attrs.Lflag&unix.ECHO != 0, attrs.Lflag&unix.ICANON != 0)
	}
}

// TestQuestions checks that a command asking a question reads its answer from
// the terminal: typed at the question (the terminal echoes it), or pasted
// along with the command, shown as if typed; Ctrl-D answers end of input, and
// Ctrl-C cancels the command.
func TestQuestions(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for several seconds")
	}
	tm := startHelper(t)
	tm.send("ask\r")
	pos := tm.waitFor(0, "question? ")
	tm.send("y\r")
	pos = tm.waitFor(pos, "y\nanswer \"y\\n\" <nil>\nend ask\n")

	tm.send("ask\ryes\recho after\r")
	pos = tm.waitFor(pos, "question? yes\nanswer \"yes\\n\" <nil>\nend ask\n")
	pos = tm.waitFor(pos, "end echo after\n")

	tm.send("ask\r")
	pos = tm.waitFor(pos, "question? ")
	tm.send("\x04")
	pos = tm.waitFor(pos, "answer \"\" EOF\nend ask\n")

	tm.send("ask\r") // Ctrl-C at a question cancels the command
	pos = tm.waitFor(pos, "question? ")
	tm.send("\x03")
	pos = tm.waitFor(pos, "answer \"\" EOF\nend ask\n")
	tm.send("echo last\r")
	tm.waitFor(pos, "end echo last\n")
	tm.quit()
	tm.checkHistory([]string{"ask", "ask", "echo after", "ask", "ask", "echo last"})
}
