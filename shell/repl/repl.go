// Package repl runs a shell.Shell on a terminal with github.com/c-bata/go-prompt:
// the ">>> " prompt, completion of command names, options and table names,
// the usage of the command being typed as a hint, and a history kept in a file
// across runs. go-prompt opens /dev/tty and switches it to raw mode, so Run
// must only be used when standard input is a terminal; scripted input goes
// through shell.RunScript instead.
package repl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	prompt "github.com/c-bata/go-prompt"

	"github.com/pegasusgo/pegasus/shell"
)

// maxHistory bounds the history lines loaded at start.
const maxHistory = 1000

// HistoryFile is where the history is kept: $PEGASUS_SHELL_HISTORY, else
// ~/.pegasus_shell_history.
func HistoryFile() string {
	if f := os.Getenv("PEGASUS_SHELL_HISTORY"); f != "" {
		return f
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".pegasus_shell_history"
	}
	return filepath.Join(home, ".pegasus_shell_history")
}

func loadHistory(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > maxHistory {
		lines = lines[len(lines)-maxHistory:]
	}
	return lines
}

func appendHistory(path, line string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if _, err := fmt.Fprintln(f, line); err != nil {
		f.Close()
		return fmt.Errorf("history: %w", err)
	}
	return f.Close()
}

// Run reads commands from the terminal until Ctrl-D or "exit". A Ctrl-C while a
// command runs cancels that command; at the prompt it clears the line. Lines
// pasted or typed ahead run one by one, each shown after its own prompt.
func Run(ctx context.Context, sh *shell.Shell, historyFile string) {
	c := &completer{sh: sh, ctx: ctx, cmds: map[string]shell.CommandInfo{}}
	for _, ci := range sh.Commands() {
		c.cmds[ci.Name] = ci
		c.order = append(c.order, ci)
	}
	sh.TableNames(ctx) // prime the completion of table names
	setInput := func(r io.Reader) { sh.SetInput(bufio.NewReader(r)) }
	if err := run(ctx, sh.Exec, c.complete, sh.ExitWanted, setInput, historyFile); err != nil {
		fmt.Fprintln(os.Stderr, "ERROR:", err)
	}
}

// run is Run with the shell reduced to what the prompt needs, so a test can
// drive the same terminal handling with commands of its own. setInput receives
// where the commands read the answers to their questions: the terminal, through
// the same reader as the prompt (a second reader of the terminal would take
// keys meant for the prompt).
func run(ctx context.Context, exec func(context.Context, string), complete prompt.Completer, exitWanted func() bool, setInput func(io.Reader), historyFile string) error {
	in, err := openTTY()
	if err != nil {
		return err
	}
	defer in.Close()
	setInput(answers{in})
	execute := func(line string) {
		if strings.TrimSpace(line) != "" && historyFile != "" {
			if err := appendHistory(historyFile, line); err != nil {
				fmt.Fprintln(os.Stderr, "WARNING:", err)
			}
		}
		if err := in.commandMode(); err != nil {
			fmt.Fprintln(os.Stderr, "WARNING:", err)
		}
		cctx, stop := signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
		stopAsking := context.AfterFunc(cctx, in.interrupt)
		exec(cctx, line)
		stopAsking()
		in.commandDone()
		if cctx.Err() != nil && ctx.Err() == nil {
			in.discard() // Ctrl-C: the rest of a pasted block must not run
		}
	}
	p := prompt.New(execute, complete,
		prompt.OptionParser(in),
		prompt.OptionPrefix(">>> "),
		prompt.OptionPrefixTextColor(prompt.DefaultColor),
		prompt.OptionTitle("pegasus_shell"),
		prompt.OptionHistory(loadHistory(historyFile)),
		prompt.OptionMaxSuggestion(8),
		prompt.OptionSetExitCheckerOnInput(func(in string, breakline bool) bool {
			// ctx ends on SIGTERM, which go-prompt handles itself only
			// at the prompt; during a command it cancels the command and
			// the shell must still stop.
			return breakline && (exitWanted() || ctx.Err() != nil)
		}),
	)
	p.Run()
	// go-prompt skips its own restore when the exit checker ends the loop,
	// and a command leaves the terminal without echo.
	if err := in.TearDown(); err != nil {
		return err
	}
	return nil
}

// completer suggests what may come at the cursor.
type completer struct {
	sh    *shell.Shell
	ctx   context.Context
	cmds  map[string]shell.CommandInfo
	order []shell.CommandInfo
}

// tableOptions are the options whose value is a table name.
var tableOptions = map[string]bool{"-a": true, "--app_name": true, "--app": true}

func (c *completer) complete(d prompt.Document) []prompt.Suggest {
	before := d.TextBeforeCursor()
	word := d.GetWordBeforeCursor()
	fields := strings.Fields(before)
	if len(fields) == 0 {
		return nil // an empty line shows no menu, as upstream's prompt
	}
	if len(fields) == 1 && !strings.HasSuffix(before, " ") {
		var out []prompt.Suggest
		for _, ci := range c.order {
			if strings.HasPrefix(strings.ToLower(ci.Name), strings.ToLower(word)) {
				out = append(out, prompt.Suggest{Text: ci.Name, Description: ci.Usage})
			}
		}
		return out
	}
	ci, ok := c.cmds[fields[0]]
	if !ok {
		return nil
	}
	// Words typed before the one under the cursor.
	done := fields[1:]
	if word != "" && len(done) > 0 {
		done = done[:len(done)-1]
	}
	if strings.HasPrefix(word, "-") {
		var out []prompt.Suggest
		for _, o := range ci.Options {
			desc := o.Help
			if o.Short != "" {
				desc = "-" + o.Short + ": " + desc
			}
			if o.Arg != "" {
				desc += " <" + o.Arg + ">"
			}
			if strings.HasPrefix("--"+o.Long, word) {
				out = append(out, prompt.Suggest{Text: "--" + o.Long, Description: desc})
			}
		}
		return out
	}
	wantTable := len(done) > 0 && tableOptions[done[len(done)-1]]
	if ci.TableArg && !wantTable {
		positional := 0
		for _, w := range done {
			if !strings.HasPrefix(w, "-") {
				positional++
			}
		}
		wantTable = positional == 0
	}
	if wantTable {
		return prompt.FilterHasPrefix(c.tables(), word, false)
	}
	if word == "" {
		// Nothing to complete: show the usage as a hint.
		return []prompt.Suggest{{Text: "", Description: ci.Name + " " + ci.Usage}}
	}
	return nil
}

func (c *completer) tables() []prompt.Suggest {
	names := c.sh.TableNames(c.ctx)
	out := make([]prompt.Suggest, len(names))
	for i, n := range names {
		out[i] = prompt.Suggest{Text: n, Description: "table"}
	}
	return out
}
