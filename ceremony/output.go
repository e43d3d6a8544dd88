package ceremony

import "github.com/keyceremony/keyceremony/internal/outdir"

// ErrOutputExists means an output directory exists and is not empty. It is
// outdir.ErrOutputExists: every output the tool writes (a ceremony's, the
// stable pipeline's) refuses an existing one with this one sentinel.
var ErrOutputExists = outdir.ErrOutputExists
