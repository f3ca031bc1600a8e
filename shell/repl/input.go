package repl

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	prompt "github.com/c-bata/go-prompt"
	"golang.org/x/sys/unix"
)

// Bracketed paste: a terminal that supports it wraps pasted text in these
// markers once the program asks for it, so a pasted Tab or Escape is text, not
// a key.
const (
	pasteOn    = "\x1b[?2004h"
	pasteOff   = "\x1b[?2004l"
	pasteStart = "\x1b[200~"
	pasteEnd   = "\x1b[201~"
)

// partialWait is how long an unfinished escape sequence or character at the end
// of what was read waits for its rest before it is handed out as it is (a lone
// Escape key press looks like the start of a sequence).
const partialWait = 50 * time.Millisecond

// errNoInput tells go-prompt's reader there is nothing to feed now; it polls
// again shortly.
var errNoInput = errors.New("no input ready")

// ttyInput is the prompt's console parser. go-prompt takes each Read as one key
// press and matches it whole against its key table, so a read holding several
// keys (a paste, or lines typed while a command ran) would be inserted as
// garbled text. ttyInput reads the terminal itself, all the time, and hands
// go-prompt one key or one run of plain text per Read. After an Enter it hands
// out nothing more until go-prompt sets the terminal up again, which it does
// once the command has finished: the next line then shows after its own prompt
// as if typed, and runs after the one before it.
//
// While a command runs (commandMode) the terminal neither echoes nor buffers
// lines, so keys typed ahead are kept here unseen instead of being echoed into
// the command's output, while Ctrl-C still raises SIGINT to cancel the command.
type ttyInput struct {
	tty  *os.File
	orig unix.Termios
	done chan struct{} // closed when the reader goroutine ends

	mu           sync.Mutex
	cond         *sync.Cond // on mu: pending grew, or the reader ended
	pending      []byte     // read from the terminal, not yet handed out
	unechoed     int        // bytes at the head of pending the terminal did not echo
	held         bool       // an Enter was handed out; wait for the next Setup
	inPaste      bool       // between the bracketed paste markers
	partialSince time.Time  // when an unfinished sequence was first seen at the end
	asking       bool       // a command waits for an answer line (see readAnswer)
	eofs         int        // Ctrl-D pressed while asking, not yet read
	interrupted  bool       // the running command was cancelled: stop asking
	ended        bool       // the reader goroutine ended
}

var _ prompt.ConsoleParser = (*ttyInput)(nil)

// openTTY opens the controlling terminal and starts reading it.
func openTTY() (*ttyInput, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open terminal: %w", err)
	}
	in := &ttyInput{tty: f, done: make(chan struct{})}
	in.cond = sync.NewCond(&in.mu)
	var orig *unix.Termios
	if err := in.control(func(fd int) (err error) {
		orig, err = unix.IoctlGetTermios(fd, unix.TCGETS)
		return err
	}); err != nil {
		f.Close()
		return nil, fmt.Errorf("terminal settings: %w", err)
	}
	in.orig = *orig
	go in.readLoop()
	return in, nil
}

// control runs fn on the terminal's descriptor without File.Fd, which would
// switch it to blocking mode and so keep Close from ending the reader.
func (in *ttyInput) control(fn func(fd int) error) error {
	rc, err := in.tty.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func (in *ttyInput) readLoop() {
	defer close(in.done)
	defer func() {
		in.mu.Lock()
		in.ended = true
		in.cond.Broadcast()
		in.mu.Unlock()
	}()
	buf := make([]byte, 4096)
	for {
		n, err := in.tty.Read(buf)
		in.mu.Lock()
		if n > 0 {
			in.pending = append(in.pending, buf[:n]...)
			if !in.asking {
				in.unechoed += n
			}
			in.cond.Broadcast()
		}
		// In line mode (asking) Ctrl-D reads as end of file; otherwise end of
		// file means the terminal hung up.
		eof := err == io.EOF && in.asking
		if eof {
			in.eofs++
			in.cond.Broadcast()
		}
		in.mu.Unlock()
		if err != nil && !eof {
			return // closed, or the terminal went away
		}
	}
}

// consumed drops n bytes from the head of pending.
func (in *ttyInput) consumed(n int) {
	in.pending = in.pending[n:]
	in.unechoed = max(in.unechoed-n, 0)
}

// answers reads the lines a running command asks for (a confirmation, the
// mutations of check_and_mutate) from the same terminal, so that answers
// pasted or typed ahead reach the question, in order, as in a script.
type answers struct{ in *ttyInput }

// Read returns one line, ending with a newline; it waits for the line with
// the terminal in its own line mode (echo and line editing on), and shows a
// line that was typed or pasted before the question as if typed then.
func (a answers) Read(p []byte) (int, error) {
	in := a.in
	in.mu.Lock()
	defer in.mu.Unlock()
	defer func() {
		if in.asking {
			in.asking = false
			if err := in.commandMode(); err != nil {
				in.log(err)
			}
		}
	}()
	for {
		if i := bytes.IndexAny(in.pending, "\r\n"); i >= 0 {
			end := i + 1
			if in.pending[i] == '\r' && end < len(in.pending) && in.pending[end] == '\n' {
				end++
			}
			line := append(append([]byte(nil), in.pending[:i]...), '\n')
			if i < in.unechoed {
				_, _ = in.tty.Write(append(line[:i:i], '\r', '\n'))
			}
			if len(line) > len(p) { // leave the rest for the next Read
				end, line = len(p), line[:len(p)]
			}
			in.consumed(end)
			return copy(p, line), nil
		}
		if in.eofs > 0 {
			in.eofs--
			return 0, io.EOF
		}
		if in.ended || in.interrupted {
			return 0, io.EOF
		}
		if !in.asking {
			in.asking = true
			if err := in.setMode(func(*unix.Termios) {}); err != nil {
				in.log(err)
			}
		}
		in.cond.Wait()
	}
}

func (in *ttyInput) log(err error) { fmt.Fprintln(os.Stderr, "WARNING: terminal:", err) }

// setMode applies the original settings changed by edit.
func (in *ttyInput) setMode(edit func(t *unix.Termios)) error {
	t := in.orig
	edit(&t)
	return in.control(func(fd int) error { return unix.IoctlSetTermios(fd, unix.TCSETS, &t) })
}

// Setup puts the terminal in raw mode for line editing, as go-prompt's own
// parser does, asks for bracketed paste, and lets the next line through.
func (in *ttyInput) Setup() error {
	err := in.setMode(func(t *unix.Termios) {
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Lflag &^= unix.ECHO | unix.ICANON | unix.IEXTEN | unix.ISIG | unix.ECHONL
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
	})
	if err != nil {
		return fmt.Errorf("terminal raw mode: %w", err)
	}
	_, _ = in.tty.WriteString(pasteOn)
	in.mu.Lock()
	in.held = false
	in.mu.Unlock()
	return nil
}

// TearDown restores the terminal's own settings (go-prompt calls it before
// running a command and when it ends).
func (in *ttyInput) TearDown() error {
	_, _ = in.tty.WriteString(pasteOff)
	if err := in.setMode(func(*unix.Termios) {}); err != nil {
		return fmt.Errorf("terminal restore: %w", err)
	}
	return nil
}

// commandMode is the terminal's own settings without echo and line
// buffering, for while a command runs: see the type's comment.
func (in *ttyInput) commandMode() error {
	err := in.setMode(func(t *unix.Termios) {
		t.Lflag &^= unix.ECHO | unix.ICANON | unix.ECHONL
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
	})
	if err != nil {
		return fmt.Errorf("terminal command mode: %w", err)
	}
	return nil
}

// interrupt ends a question of the running command: Ctrl-C cancelled it.
func (in *ttyInput) interrupt() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.interrupted = true
	in.cond.Broadcast()
}

// commandDone readies the answers for the next command.
func (in *ttyInput) commandDone() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.interrupted = false
}

// discard drops the keys typed ahead (after Ctrl-C cancelled a command, as a
// terminal drops its unread input on an interrupt: the rest of a pasted block
// must not run on its own).
func (in *ttyInput) discard() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.pending = nil
	in.unechoed = 0
	in.eofs = 0
	in.inPaste = false
	in.partialSince = time.Time{}
}

// Close restores the terminal and ends the reader.
func (in *ttyInput) Close() error {
	err := in.TearDown()
	if cerr := in.tty.Close(); err == nil {
		err = cerr
	}
	<-in.done
	return err
}

// GetWinSize returns the terminal's size. A terminal that reports no size
// (a pseudo-terminal nobody sized, as some tools and ssh clients leave it)
// counts as 80x24: go-prompt divides by the width.
func (in *ttyInput) GetWinSize() *prompt.WinSize {
	var ws *unix.Winsize
	err := in.control(func(fd int) (err error) {
		ws, err = unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		return err
	})
	size := &prompt.WinSize{Row: 24, Col: 80}
	if err == nil {
		if ws.Row > 0 {
			size.Row = ws.Row
		}
		if ws.Col > 0 {
			size.Col = ws.Col
		}
	}
	return size
}

// Read hands go-prompt the next key or run of text, or errNoInput.
func (in *ttyInput) Read() ([]byte, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for !in.held && len(in.pending) > 0 {
		tok, n, paste := nextToken(in.pending, in.inPaste)
		if n == 0 { // unfinished at the end: wait a little for the rest
			if in.partialSince.IsZero() {
				in.partialSince = time.Now()
			}
			if time.Since(in.partialSince) < partialWait {
				return nil, errNoInput
			}
			tok, n = in.pending, len(in.pending)
		}
		in.partialSince = time.Time{}
		in.consumed(n)
		switch {
		case paste != 0:
			in.inPaste = paste > 0
			continue
		case len(tok) == 0:
			continue
		case tok[0] == '\r' || tok[0] == '\n':
			in.held = true
			return []byte{'\r'}, nil
		}
		return append([]byte(nil), tok...), nil
	}
	return nil, errNoInput
}

// nextToken splits the first key or run of text off b: it returns the token,
// how many bytes of b it used (0 when b ends before the token does), and +1 or
// -1 when the token is a bracketed paste start or end marker. Inside a paste
// everything but a line break is text.
func nextToken(b []byte, inPaste bool) (tok []byte, n int, paste int) {
	if bytes.HasPrefix(b, []byte(pasteStart)) {
		return nil, len(pasteStart), +1
	}
	if bytes.HasPrefix(b, []byte(pasteEnd)) {
		return nil, len(pasteEnd), -1
	}
	switch c := b[0]; {
	case c == '\r':
		if len(b) > 1 && b[1] == '\n' {
			return b[:2], 2, 0 // one line break from a CRLF text
		}
		return b[:1], 1, 0
	case c == '\n':
		return b[:1], 1, 0
	case inPaste:
		i := 0
		for ; i < len(b) && b[i] != '\r' && b[i] != '\n'; i++ {
			if b[i] == 0x1b && (bytes.HasPrefix(b[i:], []byte(pasteEnd)) || bytes.HasPrefix([]byte(pasteEnd), b[i:])) {
				break // the end marker, or what may be its start cut by the read
			}
		}
		if i == 0 {
			return nil, 0, 0
		}
		t := bytes.Map(func(r rune) rune {
			switch {
			case r == '\t':
				return ' '
			case r < 0x20 || r == 0x7f:
				return -1
			}
			return r
		}, b[:i])
		return t, i, 0
	case c == 0x1b:
		return escapeToken(b)
	case c < 0x20 || c == 0x7f:
		return b[:1], 1, 0
	}
	i := 0
	for i < len(b) && b[i] >= 0x20 && b[i] != 0x7f {
		i++
	}
	// Keep a character cut by the read for the next token.
	for k := i - 1; k >= 0 && k >= i-utf8.UTFMax; k-- {
		if utf8.RuneStart(b[k]) {
			if !utf8.FullRune(b[k:i]) {
				if k == 0 {
					return nil, 0, 0
				}
				i = k
			}
			break
		}
	}
	return b[:i], i, 0
}

// escapeToken splits off one escape sequence: CSI (ESC [ ... final), SS3
// (ESC O x), or ESC followed by one key (Alt+key).
func escapeToken(b []byte) ([]byte, int, int) {
	if len(b) == 1 {
		return nil, 0, 0 // maybe Escape alone, maybe the start of a sequence
	}
	switch b[1] {
	case '[':
		for i := 2; i < len(b); i++ {
			if b[i] >= 0x40 && b[i] <= 0x7e {
				return b[:i+1], i + 1, 0
			}
			if b[i] < 0x20 || b[i] > 0x7e {
				return b[:i], i, 0 // not a sequence after all
			}
		}
		return nil, 0, 0
	case 'O':
		if len(b) < 3 {
			return nil, 0, 0
		}
		return b[:3], 3, 0
	case 0x1b:
		return b[:1], 1, 0
	}
	return b[:2], 2, 0
}
