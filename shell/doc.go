// Package shell is the command interpreter of pegasus_shell, the operators'
// admin tool: cluster, node and table management through the meta server,
// disk and metric views from the replica servers, table availability from the
// collector or a probe of its own, and data commands through the data client.
//
// A Shell executes one line at a time (Exec) and never ends the session on a
// bad line: unknown commands, bad options, unbalanced quotes and RPC failures
// print "ERROR: ..." on the error stream and the next line runs. Output streams
// follow upstream pegasus_shell so existing scripts keep working: tables and
// remote-command JSON on stdout; data command results, the use/timeout/
// escape_all acknowledgements and errors on stderr. Table layouts are those of
// upstream's table printer (package shell/table).
//
// RunScript drives a Shell from a non-terminal stream (one command per line, no
// prompt, no line editing); package shell/repl drives it from a terminal with
// go-prompt.
package shell
