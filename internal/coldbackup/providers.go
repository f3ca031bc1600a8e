package coldbackup

import (
	"fmt"
	"sync"

	"golang.org/x/time/rate"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// Options are a server's cold backup settings, from its configuration.
type Options struct {
	// Root is [replication] cold_backup_root; empty disables backups on a
	// replica server.
	Root string
	// Providers are the [block_service.<name>] sections by name.
	Providers map[string]blockservice.Config
	// RateMBps bounds the bytes per second moved to and from the block
	// services ([replication] cold_backup_rate_mbps); 0 = no limit.
	RateMBps int
}

// Providers opens each named block service on first use and keeps it, as
// upstream's block_service_manager does.
type Providers struct {
	opts Options
	lim  *rate.Limiter

	mu   sync.Mutex
	open map[string]blockservice.Service
}

// NewProviders returns the providers opts configures.
func NewProviders(opts Options) *Providers {
	return &Providers{opts: opts, lim: blockservice.NewLimiter(opts.RateMBps), open: map[string]blockservice.Service{}}
}

// Root is the configured cold_backup_root.
func (p *Providers) Root() string { return p.opts.Root }

// Limiter is the server-wide transfer limit (nil: none).
func (p *Providers) Limiter() *rate.Limiter { return p.lim }

// Get returns the provider called name.
func (p *Providers) Get(name string) (blockservice.Service, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if svc := p.open[name]; svc != nil {
		return svc, nil
	}
	cfg, ok := p.opts.Providers[name]
	if !ok {
		return nil, fmt.Errorf("block service provider %q is not configured ([block_service.%s])", name, name)
	}
	svc, err := blockservice.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("block service provider %q: %w", name, err)
	}
	p.open[name] = svc
	return svc, nil
}

// FromConfig reads the cold backup settings of a configuration.
func FromConfig(cfg *config.Config) Options {
	o := Options{Root: cfg.Replication.ColdBackupRoot, RateMBps: cfg.Replication.ColdBackupRateMBps, Providers: map[string]blockservice.Config{}}
	for name, bs := range cfg.BlockServices {
		o.Providers[name] = blockservice.Config{Type: bs.Type, Args: bs.Args}
	}
	return o
}
