package persistence

import (
	"encoding/json"
	"time"
)

var prefixVolume = []byte("arca/v1/volume/")

// VolumeRecord is a volume: of the local driver, its data lives in
// volumes/<name>/_data under the root; of the block driver, in the ext4
// image volumes/<name>/disk.ext4.
type VolumeRecord struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	// Anonymous volumes (image VOLUME, -v /path) go with their container
	// on rm -v and are what volume prune takes by default.
	Anonymous bool `json:"anonymous,omitempty"`
}

// Mount is one of a container's mounts as resolved at create.
type Mount struct {
	Type        string `json:"type"`             // volume, bind, tmpfs
	Name        string `json:"name,omitempty"`   // volume name
	Driver      string `json:"driver,omitempty"` // volume driver; "" is local
	Source      string `json:"source,omitempty"` // host path (bind; volume: its _data)
	Destination string `json:"destination"`
	RW          bool   `json:"rw"`
	Mode        string `json:"mode,omitempty"` // as given after the second colon of -v
	NoCopy      bool   `json:"noCopy,omitempty"`
	Anonymous   bool   `json:"anonymous,omitempty"`
	// TmpfsOptions are mount(8) options for tmpfs ("size=65536k,mode=1777").
	TmpfsOptions string `json:"tmpfsOptions,omitempty"`
}

func volumeKey(name string) []byte { return append(append([]byte{}, prefixVolume...), name...) }

func (s *Store) PutVolume(r *VolumeRecord) error { return s.put(volumeKey(r.Name), r) }
func (s *Store) DeleteVolume(name string) error  { return s.delete(volumeKey(name)) }

// Volumes returns every volume record.
func (s *Store) Volumes() ([]*VolumeRecord, error) {
	var out []*VolumeRecord
	err := s.scan(prefixVolume, func(_, val []byte) error {
		var r VolumeRecord
		if err := json.Unmarshal(val, &r); err != nil {
			return err
		}
		out = append(out, &r)
		return nil
	})
	return out, err
}
