package meta

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pegasusgo/pegasus/internal/throttle"
)

// envCheck validates the value of one table env.
type envCheck func(v string) error

func intAtLeast(min int64) envCheck {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			return fmt.Errorf("want an integer >= %d", min)
		}
		return nil
	}
}

func oneOf(values ...string) envCheck {
	return func(v string) error {
		for _, x := range values {
			if v == x {
				return nil
			}
		}
		return fmt.Errorf("want one of %s", strings.Join(values, ", "))
	}
}

func anyValue(string) error { return nil }

// throttling checks the grammar of the throttling keys (replica servers parse
// the same way, internal/throttle).
func throttling(v string) error {
	_, err := throttle.Parse(v)
	return err
}

func throttlingRate(v string) error {
	_, err := throttle.ParseRate(v)
	return err
}

// supportedEnvs are the table envs accepted by update_app_env, with their
// checks: those the replica servers act on (docs/operations.md "Table
// controls"), and business.info, a free annotation nothing reads.
func supportedEnvs() map[string]envCheck {
	return map[string]envCheck{
		"default_ttl":                                         intAtLeast(0),
		"replica.deny_client_request":                         oneOf("timeout*all", "timeout*write", "timeout*read", "reconfig*all", "reconfig*write", "reconfig*read", ""),
		"replica.write_throttling":                            throttling,
		"replica.write_throttling_by_size":                    throttling,
		"replica.read_throttling":                             throttling,
		"replica.read_throttling_by_size":                     throttlingRate,
		"replica.backup_request_throttling":                   throttling,
		"rocksdb.usage_scenario":                              oneOf("normal", "prefer_write", "bulk_load"),
		"manual_compact.disabled":                             oneOf("true", "false"),
		"manual_compact.max_concurrent_running_count":         intAtLeast(0),
		"manual_compact.once.trigger_time":                    intAtLeast(0),
		"manual_compact.once.target_level":                    intAtLeast(-1),
		"manual_compact.once.bottommost_level_compaction":     oneOf("force", "skip"),
		"manual_compact.periodic.trigger_time":                anyValue,
		"manual_compact.periodic.target_level":                intAtLeast(-1),
		"manual_compact.periodic.bottommost_level_compaction": oneOf("force", "skip"),
		"business.info":                                       anyValue,
	}
}

// unsupportedEnvs are upstream's table envs this release refuses, with why:
// accepting them would tell an operator "succeed" for a setting no server
// acts on.
func unsupportedEnvs() map[string]string {
	return map[string]string{
		"replica.slow_query_threshold":              "slow-query logging is not implemented",
		"replica.rocksdb_block_cache_enabled":       "it has no effect in upstream Pegasus either",
		"replica.split.validate_partition_hash":     "partition split is not implemented",
		"rocksdb.allow_ingest_behind":               "bulk load is not implemented",
		"rocksdb.checkpoint.reserve_min_count":      "local checkpoints are not kept the upstream way",
		"rocksdb.checkpoint.reserve_time_seconds":   "local checkpoints are not kept the upstream way",
		"rocksdb.write_buffer_size":                 "set [pegasus.server] rocksdb_write_buffer_size instead",
		"rocksdb.num_levels":                        "Pebble has a fixed number of levels",
		"user_specified_compaction":                 "user-specified compaction rules are not implemented",
		"replica_access_controller.allowed_users":   "client authentication (and so table ACLs) is not implemented",
		"replica_access_controller.ranger_policies": "client authentication (and so table ACLs) is not implemented",
	}
}

// validateEnvs checks env keys and values, naming every problem.
func validateEnvs(envs map[string]string) error {
	if len(envs) == 0 {
		return nil
	}
	known, unsupported := supportedEnvs(), unsupportedEnvs()
	var problems []string
	keys := make([]string, 0, len(envs))
	for k := range envs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		check, ok := known[k]
		if why, refused := unsupported[k]; refused {
			problems = append(problems, fmt.Sprintf("app env %q is not supported by this release: %s", k, why))
			continue
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("app env %q is not supported", k))
			continue
		}
		if err := check(envs[k]); err != nil {
			problems = append(problems, fmt.Sprintf("app env %s=%q: %v", k, envs[k], err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
