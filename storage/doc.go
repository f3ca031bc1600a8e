// Package storage is the storage engine of one Pegasus partition replica: a Pebble
// database holding the partition's records with Pegasus data semantics (hash key, sort
// key, value, TTL) and the full rrdb operation set, applied in decree order.
//
// # Layout
//
// User records are stored under their composite key (package keys) with the data
// version 1 value layout (expire_ts, timetag, user value); stores of data version 0 are
// read and written in that layout. User keys occupy [00 00, FF FF): a composite key is
// at least 2 bytes long and starts with the u16 length of its hash key, and 0xFFFF is
// not a valid length. Every user iteration is bounded to that range, and the engine's
// own records live outside it:
//
//	00                                 last applied decree: u64 BE decree ++ u64 BE timestamp_us
//	FF FF "pegasus.meta/data_version"  u32 BE data version
//
// The decree record is rewritten by every mutation, so its placement matters: 00 is the
// smallest key there is (after the empty key, which the reference server uses for
// "empty writes" and which is left alone), and the newest version of the smallest key is
// the first node of Pebble's memtable skiplist, which makes its insertion the cheapest
// possible. The empty writes themselves are not needed: every mutation writes the
// decree record anyway.
//
// # Writes and decrees
//
// A Mutation (decree, primary-assigned timestamp, ops) is applied by Apply in one Pebble
// batch that also rewrites the decree record, so readers never see half a mutation and
// the on-disk decree always names exactly the data on disk. Ops that read before they
// write (incr, check-and-set, check-and-mutate) use an indexed batch, so they see the
// earlier ops of the same mutation; the others use a plain batch encoded in place.
// Everything time-dependent in a write (timetags, the table default TTL, whether the
// record an incr or a check reads has expired) is computed from the mutation's
// timestamp, never from the local clock, so all replicas produce identical data.
//
// The decree record is the main cost of the write path: it is a second memtable
// insertion per mutation. On single 1 KB puts the store runs at roughly 70-80% of the
// ops/s of raw Pebble writing the same records, and at 90-95% of raw Pebble writing
// the same records plus a decree record (see BenchmarkPut).
//
// # Durability
//
// The Pebble WAL is off by default: the replica's mutation log replays what a crash
// loses. LastDurableDecree reads the decree record from the flushed state only (Pebble's
// OnlyReadGuaranteedDurable iterators ignore memtables), so it is exact whatever
// triggered the flushes; after a restart the last applied and last durable decrees are
// both the decree on disk. Flush forces durability and Close flushes before closing.
// With the WAL on, every batch is synced and durable as soon as Apply returns.
// Checkpoint holds writes off while it flushes and cuts a Pebble checkpoint, so the
// checkpoint holds exactly the decrees up to the one it returns.
//
// # Reads
//
// Reads (get, multi_get, batch_get, sortkey_count, ttl, scanners) judge expiry by the
// store's Clock. Multi-record reads read one snapshot (a Pebble iterator or snapshot).
// Scanners keep their Pebble iterator open between batches in a context table bounded
// in size (the least recently used context is evicted when full) and in idle time (a
// janitor goroutine closes idle contexts; Scan also checks lazily). A context id is
// used once: every batch that leaves records to read stores the context under a new id.
//
// # TTL purge
//
// RocksDB purges expired records in a compaction filter; Pebble v1.1 has no such hook,
// and its compactions cannot drop or rewrite user records. Expired records are
// therefore invisible to every read from the moment they expire (each read checks
// expire_ts), and are physically removed by a sweep, PurgeExpired, that deletes them
// through the normal write path: it iterates the user key space, collects expired keys,
// and deletes them in small batches under the write lock after re-reading each one, so
// a record rewritten concurrently is never lost. These batches do not touch the decree:
// deleting an invisible record does not change what any read returns.
//
// To keep the sweep cheap where there is little TTL data, every sstable carries a table
// property with the smallest non-zero expire_ts it holds (written by a table property
// collector at flush and compaction time); the sweep's iterator skips every sstable
// that holds nothing expired by the threshold, so a sweep reads only the memtables and
// the tables that actually contain expired records. (Block-granular skipping would be
// finer, but Pebble does not show SET values to block property collectors in its
// current table formats.) The sweep runs every PurgeInterval in the background and at
// the start of Compact, the manual compaction entry point, which then compacts the
// whole key space so the tombstones and the space go away.
//
// A record is purged only when its expire_ts is at or below the earlier of the local
// clock and the last applied mutation's timestamp, minus PurgeGracePeriod. Writes judge
// expiry by their mutation's timestamp, so purging a record that a later mutation would
// still consider alive would make this replica diverge; the grace period covers a new
// primary whose clock lags the old one.
//
// The trade-offs against a compaction filter: deleting costs a tombstone write and a
// read per expired record (the filter's deletion is free), expired data occupies disk
// until the next sweep and compaction, and a sweep reads whole sstables that hold any
// expired record. In exchange the mechanism uses only public Pebble APIs, keeps the write path
// the single source of changes, and cannot resurrect or lose live data.
//
// # Configuration
//
// The store takes plain Options and knows nothing of config.ini: the replica server
// (daemon/replica) maps the [pegasus.server] section, as the config package decoded
// and checked it, onto Options, and logs the rocksdb_* keys without a Pebble
// equivalent as ignored.
package storage
