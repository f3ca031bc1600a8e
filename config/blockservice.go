package config

import (
	"errors"
	"strings"
)

// BlockService is one [block_service.<name>] section: a provider of the
// storage cold backups are written to, named by <name> in backup requests
// (backup_provider_type, restore's -b).
type BlockService struct {
	// Type (type) is local_service or hdfs_service; only local_service
	// works in this implementation.
	Type string
	// Args (args) are space-separated; for local_service the root directory
	// (empty: the working directory).
	Args []string
}

// blockServicePrefix starts the names of the block service sections.
const blockServicePrefix = "block_service."

// decodeBlockServices reads every [block_service.<name>] section.
func decodeBlockServices(d *decoder) map[string]BlockService {
	out := map[string]BlockService{}
	for _, name := range d.sectionNames() {
		provider, ok := strings.CutPrefix(name, blockServicePrefix)
		if !ok {
			continue
		}
		r := d.reader(name)
		if provider == "" {
			d.valueErr(name, "", "", errors.New("block service section needs a provider name: [block_service.<name>]"))
			continue
		}
		bs := BlockService{
			Type: r.enum("type", "", "local_service", "hdfs_service"),
			Args: strings.Fields(r.str("args", "")),
		}
		if len(bs.Args) == 0 {
			bs.Args = nil
		}
		if v, _ := r.lookup("type"); v == "" {
			r.failKey("type", "", errors.New("required: local_service or hdfs_service"))
		}
		r.finish()
		out[provider] = bs
	}
	return out
}
