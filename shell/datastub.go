package shell

import (
	"context"
	"errors"

	"github.com/pegasusgo/pegasus/shell/opts"
)

// DataClient is the data client the data commands use.
type DataClient interface{ Close() error }

// DataOpener opens a data client on a meta server list.
type DataOpener func(ctx context.Context, metas []string) (DataClient, error)

func openKV(ctx context.Context, metas []string) (DataClient, error) {
	return nil, errors.New("the data client is not built into this shell yet")
}

func (s *Shell) registerData() {}

func (s *Shell) probeAvailability(ctx context.Context, r *opts.Result) error {
	return errors.New("availability --probe needs the data client, which is not built into this shell yet")
}
