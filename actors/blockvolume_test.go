package actors

import (
	"errors"
	"testing"

	"github.com/arcavm/arca/messages"
)

func TestBlockSize(t *testing.T) {
	for _, tc := range []struct {
		opts map[string]string
		want int64 // 0: a 400
	}{
		{nil, defaultBlockSize},
		{map[string]string{"size": "1G"}, 1 << 30},
		{map[string]string{"size": "512m"}, 512 << 20},
		{map[string]string{"size": "2GiB"}, 2 << 30},
		{map[string]string{"size": "67108864"}, 64 << 20},
		{map[string]string{"size": " 100M "}, 100 << 20},
		{map[string]string{"size": "1M"}, 0},  // under the minimum
		{map[string]string{"size": "32T"}, 0}, // over ext4's limit
		{map[string]string{"size": "big"}, 0},
		{map[string]string{"size": ""}, 0},
		{map[string]string{"size": "-1G"}, 0},
		{map[string]string{"type": "ext4"}, 0},
		{map[string]string{"size": "1G", "o": "noatime"}, 0},
	} {
		got, err := blockSize(tc.opts)
		if tc.want == 0 {
			var me *messages.Error
			if !errors.As(err, &me) || me.Kind != messages.KindInvalidParameter {
				t.Errorf("%v: got %d, %v; want an invalid parameter error", tc.opts, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: got %d, %v; want %d", tc.opts, got, err, tc.want)
		}
	}
}
