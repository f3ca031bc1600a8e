// Package mlog is the private mutation log ("plog") of one partition replica.
//
// The storage engine runs with its write-ahead log disabled, so this log is the only thing
// that makes an acknowledged write survive a process crash. The replication layer appends
// every prepared mutation here and acknowledges it ("logged") only once Append's callback
// reports success. At restart it replays every record and re-applies those above the
// engine's durable decree. Records are opaque to this package: a decree, a ballot and a
// byte slice (the thrift-encoded mutation).
//
// # Files
//
// A log is a directory of files named log.<index>.<start offset>, as upstream Pegasus
// names them. The index counts files from 1. The start offset is the global byte offset
// (headers included) of the file's first byte, so the file after log.i.s is always
// log.<i+1>.<s+size>. Open checks that the files are contiguous, because a missing or
// resized file in the middle means lost mutations. A new file is started as soon as a write
// takes the current one to Options.FileSizeBytes or beyond, so files overshoot by at most
// one batch.
//
// Every file starts with a 40-byte header. All integers are little-endian:
//
//	 0  magic "PLOG"
//	 4  version, uint32 (1)
//	 8  flags, uint32 (bit 0: this is the first file of the log; see Reset)
//	12  index, int64
//	20  start offset, int64
//	28  highest decree in all earlier files (cumulative), int64
//	36  CRC-32C of bytes 0..35, uint32
//
// Records follow the header, back to back:
//
//	 0  CRC-32C of record bytes 4..27, uint32
//	 4  data length, uint32 (at most MaxRecordBytes)
//	 8  CRC-32C of the data, uint32
//	12  decree, int64
//	20  ballot, int64
//	28  data
//
// The record header has its own checksum, so a reader can trust a length before reading
// the data. Recovery needs that to decide whether anything valid follows a bad record.
//
// The "highest decree in earlier files" field lets GC work from headers alone: every
// record in file i has a decree no higher than the value in file i+1's header. Nothing else
// is persisted. The value is a running maximum, so a decree that goes backwards (a new
// primary re-preparing an uncommitted decree under a higher ballot) cannot make GC delete a
// file too early.
//
// # Group commit
//
// Append encodes the record and computes its checksums in the caller's goroutine. It then
// appends the bytes to a pending buffer and returns. A single writer goroutine takes the
// whole pending buffer, writes it with one write(2) call on a file opened with O_APPEND,
// fsyncs if Options.ForceFlush is set, and then calls every callback in append order.
// Only one write is in flight at a time. Records appended meanwhile form the next batch, so
// the batch size grows with the load without any timer. Memory is bounded: once
// Options.MaxPendingBytes are pending (excluding the batch being written), Append blocks
// until the writer takes the next batch. A slow disk therefore slows the caller's
// goroutine (for a replica, its serial executor) instead of growing the queue without
// limit. The check happens before a record is added, so the queue can overshoot by one
// record, and a record larger than the limit does not wait forever.
//
// After a failed write or fsync, the log is failed for good. That batch and every later
// Append report the same error, because the replica above moves to its error state and
// never writes again.
//
// # Durability
//
// ForceFlush is false by default, like upstream's plog_force_flush. A completed write sits
// in the OS page cache, which survives the process being killed but not a power loss or a
// kernel crash. Upstream relies on replication to cover that case, and so does this
// package. With ForceFlush, each batch is fsynced before its callbacks run, and the
// directory is fsynced whenever a file is created. Without ForceFlush, nothing on the data
// path fsyncs, Close included: a process exit keeps the page cache, and the OS writes it
// back on its own schedule (about 30 s with Linux defaults). Reset is the exception. It always fsyncs, because it must be atomic
// (see Log.Reset).
//
// # Recovery
//
// Open reads every file header and then scans the current (last) file. A torn or corrupt
// record at the tail of the last file comes from a crash in the middle of a write. It is
// truncated away in Open, before any Append can land behind it, so Replay and later
// appends both start from a clean point. A bad record is treated as the tail only when no
// valid record follows it in the file. If a valid record does follow, the damage is not a
// torn write, and Open fails instead of silently dropping acknowledged mutations. Any bad
// record in an earlier file makes Replay fail. Errors about on-disk damage wrap ErrCorrupt
// and name the file and the offset.
//
// Replay must run before the first Append. It must not run concurrently with GC or Reset.
package mlog
