package persistence

import (
	"encoding/json"
	"time"
)

var prefixNetwork = []byte("arca/v1/network/")

// NetworkRecord is a Docker network as created. Which containers are on it
// is not kept here: that lives in each container's record (Networks), and
// who is connected right now is the network actor's live state.
type NetworkRecord struct {
	ID         string            `json:"id"` // 64 hex
	Name       string            `json:"name"`
	Driver     string            `json:"driver"` // bridge, null (none), host
	Created    time.Time         `json:"created"`
	Internal   bool              `json:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	EnableIPv6 bool              `json:"enableIPv6,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	// IPAM: one IPv4 pool; Subnet empty for networks without addresses
	// (none, host).
	Subnet  string `json:"subnet,omitempty"`  // CIDR
	Gateway string `json:"gateway,omitempty"` // address inside Subnet
	IPRange string `json:"ipRange,omitempty"` // CIDR inside Subnet: where dynamic addresses come from
	// SubnetGiven is set when the user chose the subnet; only then may
	// containers ask for a fixed --ip, as with dockerd.
	SubnetGiven bool              `json:"subnetGiven,omitempty"`
	IPAMDriver  string            `json:"ipamDriver,omitempty"`
	IPAMOptions map[string]string `json:"ipamOptions,omitempty"`
}

func networkKey(id string) []byte { return append(append([]byte{}, prefixNetwork...), id...) }

func (s *Store) PutNetwork(r *NetworkRecord) error { return s.put(networkKey(r.ID), r) }
func (s *Store) DeleteNetwork(id string) error     { return s.delete(networkKey(id)) }

// Networks returns every network record.
func (s *Store) Networks() ([]*NetworkRecord, error) {
	var out []*NetworkRecord
	err := s.scan(prefixNetwork, func(_, val []byte) error {
		var r NetworkRecord
		if err := json.Unmarshal(val, &r); err != nil {
			return err
		}
		out = append(out, &r)
		return nil
	})
	return out, err
}
