// Package config loads the server's config.ini, the INI file shared by the
// meta server, the replica server and the collector.
//
// The file keeps the upstream Pegasus section and key names so that an
// operator can reuse a config.ini written for the C++ servers. Loading is
// deliberately strict where a mistake would only show up later as a confusing
// runtime failure, and deliberately lenient (a warning, never silence) where
// upstream files carry settings that this implementation has no use for:
//
//   - A file that still contains deployment placeholders such as %{app.dir}
//     is refused with one error that lists every placeholder and its lines.
//     Expand fills such a template; packaging tooling uses it.
//   - Values are typed and checked when the file is loaded. A bad value is an
//     error that names the file, line, section, key and value. All such
//     errors are reported together rather than one per restart.
//   - An empty value ("key =") means the key's default, whatever its type:
//     filled-in templates are full of such lines.
//   - Unknown sections and keys, and upstream settings that this
//     implementation ignores (thread pools, task specs, ...), are reported in
//     Config.Warnings and, when a logger is given, logged. RocksDB knobs
//     without a Pebble equivalent are instead handed to the storage layer in
//     PegasusServer.Unmapped, which knows best what it ignores.
//
// Address selection for the local node ([network] primary_interface) lives
// here too, because it is driven by configuration only; the interface list is
// injectable so that the policy can be tested without real network cards.
package config
