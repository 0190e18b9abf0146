package persistence

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/dgraph-io/badger/v4"
)

const schemaVersion = "1"

var (
	keySchema       = []byte("arca/schema")
	prefixContainer = []byte("arca/v1/container/")
	prefixImage     = []byte("arca/v1/image/")
)

// Store is the badger-backed metadata store. One process per directory:
// badger's own directory lock refuses a second daemon on the same root.
type Store struct {
	db *badger.DB
}

// OpenStore opens (creating if needed) the store in dir; an empty dir with
// inMemory set gives a throwaway store for tests.
func OpenStore(dir string, inMemory bool, log *slog.Logger) (*Store, error) {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithInMemory(inMemory).
		WithLogger(badgerLogger{log}).
		// Metadata is small: keep memory use low.
		WithMemTableSize(4 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(8 << 20).
		WithIndexCacheSize(4 << 20).
		WithValueThreshold(32 << 10).
		WithNumCompactors(2)
	if inMemory {
		opts.Dir, opts.ValueDir = "", ""
	}
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open metadata store %s: %w", dir, err)
	}
	s := &Store{db: db}
	if err := s.checkSchema(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) Close() error { return s.db.Close() }

func (s *Store) checkSchema() error {
	return s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(keySchema)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(keySchema, []byte(schemaVersion))
		}
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if string(v) != schemaVersion {
			return fmt.Errorf("metadata schema %q is not supported (want %q)", v, schemaVersion)
		}
		return nil
	})
}

func (s *Store) put(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, b) }); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

func (s *Store) delete(key []byte) error {
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(key) }); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// scan decodes every value under prefix with decode.
func (s *Store) scan(prefix []byte, decode func(key, val []byte) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if err := item.Value(func(val []byte) error { return decode(item.Key(), val) }); err != nil {
				return err
			}
		}
		return nil
	})
}

func containerKey(id string) []byte { return append(append([]byte{}, prefixContainer...), id...) }
func imageKey(id string) []byte     { return append(append([]byte{}, prefixImage...), id...) }

func (s *Store) PutContainer(r *ContainerRecord) error { return s.put(containerKey(r.ID), r) }
func (s *Store) DeleteContainer(id string) error       { return s.delete(containerKey(id)) }

// Containers returns every container record.
func (s *Store) Containers() ([]*ContainerRecord, error) {
	var out []*ContainerRecord
	err := s.scan(prefixContainer, func(key, val []byte) error {
		r := new(ContainerRecord)
		if err := json.Unmarshal(val, r); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

func (s *Store) PutImage(r *ImageRecord) error { return s.put(imageKey(r.ID.String()), r) }
func (s *Store) DeleteImage(id string) error   { return s.delete(imageKey(id)) }

// Images returns every image record.
func (s *Store) Images() ([]*ImageRecord, error) {
	var out []*ImageRecord
	err := s.scan(prefixImage, func(key, val []byte) error {
		r := new(ImageRecord)
		if err := json.Unmarshal(val, r); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// badgerLogger sends badger's chatter to slog, keeping only warnings and
// errors visible at the default level.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
