// Package persistence owns Arca's on-disk world under --root:
//
//	db/                 badger: the metadata below (sync writes)
//	blobs/sha256/<hex>  OCI content (package blobs)
//	layers/<chainID>/   layers unpacked once, overlayfs format (package layers)
//	containers/<id>/    writable layer (upper, work), <id>-json.log (.1, .2… when rotated), machine state
//	volumes/<name>/_data  a local volume's data
//	volumes/<name>/disk.ext4  a block volume's image (mnt/ beside it: its
//	                    mount point on the sandbox while a container runs)
//
// # Badger key schema (version 1)
//
// All keys are UTF-8, values JSON. This is the one place that defines them.
//
//	arca/schema                 "1"; written on first open, checked on every open
//	arca/v1/container/<id>      ContainerRecord (id: 64 hex)
//	arca/v1/image/<sha256:hex>  ImageRecord (key: the image ID, its config digest)
//	arca/v1/network/<id>        NetworkRecord (id: 64 hex)
//	arca/v1/volume/<name>       VolumeRecord
//
// Fields added to a record since version 1 are optional, so an older
// record reads as their zero value and the version stays 1:
//
//	ImageRecord.parent  the image a build step or commit made this one from
//	                    (absent: none, as for pulled, loaded and imported
//	                    images). A record is written after its parent's and
//	                    deleted before it, so a parent named is always there.
//
// A record is written (and synced) before the client is told the change is
// done. Migrations, when the schema grows, are functions from version N to
// N+1 run in Open before anything else reads the store.
package persistence
