package meta

import (
	"strings"
	"testing"
)

func TestValidateEnvs(t *testing.T) {
	for _, tc := range []struct {
		envs    map[string]string
		wantErr string
	}{
		{envs: map[string]string{"replica.write_throttling": "1000*delay*100,2000*reject*10"}},
		{envs: map[string]string{"replica.read_throttling": "20K*reject*0"}},
		{envs: map[string]string{"replica.backup_request_throttling": "10*reject*0"}},
		{envs: map[string]string{"replica.read_throttling_by_size": "20M"}},
		{envs: map[string]string{"replica.write_throttling": "lots"}, wantErr: "replica.write_throttling"},
		{envs: map[string]string{"replica.write_throttling_by_size": "1*delay*1,2*delay*2"}, wantErr: "duplicate 'delay'"},
		{envs: map[string]string{"replica.read_throttling_by_size": "0"}, wantErr: "greater than 0"},
		{envs: map[string]string{"replica.deny_client_request": "timeout*all"}},
		{envs: map[string]string{"replica.deny_client_request": "drop*all"}, wantErr: "want one of"},
		{envs: map[string]string{"max_replica_count.update": "updating;3"}, wantErr: "not supported"},
		{envs: map[string]string{"user_specified_compaction": "{}"}, wantErr: "not supported by this release"},
		{envs: map[string]string{"business.info": "team a"}},
		{envs: map[string]string{"manual_compact.periodic.trigger_time": "3:00,15:30"}},
	} {
		err := validateEnvs(tc.envs)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("validateEnvs(%v) = %v, want error containing %q", tc.envs, err, tc.wantErr)
		}
	}
}
