package actors

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
	"github.com/arcavm/arca/persistence/containerlog"
)

// mergeLogConfig completes a container's log config at create as dockerd
// does: the default driver, the daemon's options under the container's
// own, then the driver's checks. The result is what inspect shows.
func mergeLogConfig(lc *container.LogConfig, defaults map[string]string) error {
	if lc.Type == "" {
		lc.Type = containerlog.DriverName
	}
	if lc.Type != containerlog.DriverName {
		// Other drivers are not implemented; their output goes to a
		// json-file log without options, as before.
		if lc.Config == nil {
			lc.Config = map[string]string{}
		}
		return nil
	}
	lc.Config = containerlog.MergeDefaults(lc.Config, defaults)
	if _, err := containerlog.ParseOptions(lc.Config); err != nil {
		return messages.InvalidParameter("%v", err)
	}
	return nil
}

// openContainerLog opens the log writer of a container, rotating as its
// log config says.
func openContainerLog(dir string, rec *persistence.ContainerRecord, log *slog.Logger) (*containerlog.Writer, error) {
	var opts containerlog.Options
	if rec.HostConfig != nil && rec.HostConfig.LogConfig.Type == containerlog.DriverName {
		var err error
		opts, err = containerlog.ParseOptions(rec.HostConfig.LogConfig.Config)
		if err != nil {
			// Checked at create; a record from an older daemon keeps its
			// unbounded log rather than losing its container.
			log.Warn("container log options", "container", rec.ID, "err", err)
		}
	}
	path := filepath.Join(dir, containerlog.FileName(rec.ID))
	// Before rotation the log was container.log: keep what it holds.
	if _, err := os.Stat(path); os.IsNotExist(err) {
		_ = os.Rename(filepath.Join(dir, "container.log"), path)
	}
	return containerlog.OpenWriter(path, opts)
}
