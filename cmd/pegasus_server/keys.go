package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/rpc"
)

// keyringReloadInterval is how often the cluster secret file is checked for a
// change: a rotation reaches every server within it, without a restart.
const keyringReloadInterval = 10 * time.Second

// openKeyring loads [security] cluster_secret_file (relative to the
// configuration file's directory). Without one the server runs only when
// insecure_cluster says so, and says so at every start: a cluster that anyone can
// join must never be an accident.
func openKeyring(cfg *config.Config, log *slog.Logger) (*rpc.Keyring, error) {
	sec := cfg.Security
	if sec.ClusterSecretFile == "" {
		if !sec.InsecureCluster {
			return nil, errors.New("[security] cluster_secret_file is not set: cluster servers must prove to each other that they belong to the cluster " +
				"(create one with: openssl rand -hex 32 > secret; chmod 600 secret; see docs/security.md), " +
				"or set [security] insecure_cluster = true to run an unprotected cluster")
		}
		log.Warn("SECURITY: insecure_cluster = true: this server accepts cluster RPCs (beacons, proposals, prepares, learning) from anyone who can reach its port; set [security] cluster_secret_file to protect the cluster (docs/security.md)")
		return nil, nil
	}
	path := sec.ClusterSecretFile
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(cfg.File), path)
	}
	// Messages name the file wherever the server was started from.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	keys, err := rpc.LoadKeyring(path)
	if err != nil {
		return nil, fmt.Errorf("[security] cluster_secret_file: %w", err)
	}
	if sec.InsecureCluster {
		log.Warn("config: [security] insecure_cluster is ignored: cluster_secret_file is set")
	}
	log.Info("cluster authentication on", "secret_file", path, "secrets", keys.Len())
	return keys, nil
}

// reloadKeyring re-reads the secret file until ctx ends. A file that became
// unreadable or invalid keeps the secrets in use and is reported.
func reloadKeyring(ctx context.Context, keys *rpc.Keyring, log *slog.Logger) {
	t := time.NewTicker(keyringReloadInterval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := keys.Reload()
		switch {
		case err != nil:
			if err.Error() != lastErr {
				log.Error("cluster secret file not reloaded; the secrets in use stay", "err", err)
			}
			lastErr = err.Error()
		case changed:
			lastErr = ""
			log.Info("cluster secret file reloaded", "path", keys.Path(), "secrets", keys.Len())
		}
	}
}
