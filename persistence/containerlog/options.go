package containerlog

import (
	"fmt"
	"strconv"

	units "github.com/docker/go-units"
)

// DriverName is the only log driver Arca writes: Docker's json-file.
const DriverName = "json-file"

// Options are the json-file driver's rotation settings, parsed from a
// container's --log-opt values.
type Options struct {
	MaxSize  int64 // bytes a file may reach before rotation; 0: never rotate
	MaxFiles int   // files kept, the one being written included; >= 1
	Compress bool  // gzip rotated files
}

// ParseOptions reads max-size, max-file and compress as dockerd's json-file
// driver does, with its wording for bad values, and rejects the keys that
// driver does not know. labels, env, tag and their -regex forms are accepted
// (dockerd accepts them) but add nothing to the entries.
func ParseOptions(cfg map[string]string) (Options, error) {
	for key := range cfg {
		switch key {
		case "max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag":
		default:
			return Options{}, fmt.Errorf("unknown log opt '%s' for json-file log driver", key)
		}
	}
	o := Options{MaxFiles: 1}
	if v, ok := cfg["max-size"]; ok {
		// dockerd uses the decimal units (1k = 1000) for max-size.
		n, err := units.FromHumanSize(v)
		if err != nil {
			return Options{}, err
		}
		if n <= 0 {
			return Options{}, fmt.Errorf("max-size must be a positive number")
		}
		o.MaxSize = n
	}
	if v, ok := cfg["max-file"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Options{}, err
		}
		if n < 1 {
			return Options{}, fmt.Errorf("max-file cannot be less than 1")
		}
		o.MaxFiles = n
	}
	if v, ok := cfg["compress"]; ok {
		c, err := strconv.ParseBool(v)
		if err != nil {
			return Options{}, err
		}
		if c && (o.MaxFiles == 1 || o.MaxSize == 0) {
			return Options{}, fmt.Errorf("compress cannot be true when max-file is less than 2 or max-size is not set")
		}
		o.Compress = c
	}
	return o, nil
}

// MergeDefaults fills cfg with the daemon's defaults for keys the container
// did not set, as dockerd merges daemon.json's log-opts into a container
// using the default driver. It returns cfg, allocated if it was nil.
func MergeDefaults(cfg, defaults map[string]string) map[string]string {
	if cfg == nil {
		cfg = map[string]string{}
	}
	for k, v := range defaults {
		if _, ok := cfg[k]; !ok {
			cfg[k] = v
		}
	}
	return cfg
}
