package replica

import (
	"sync"
	"testing"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/storage"
)

// A new table's partitions are proposed to a replica server together; their
// replicas must still spread over the data disks.
func TestConcurrentCreatesSpreadOverDisks(t *testing.T) {
	stub, err := Open(Options{
		Self:        "127.0.0.1:1",
		ClusterName: "onebox",
		MetaServers: []string{"127.0.0.1:2"},
		DataDirs:    []DataDir{{Tag: "ssd1", Dir: t.TempDir()}, {Tag: "ssd2", Dir: t.TempDir()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	const n = 8
	info := &layer2.AppInfo{Status: layer2.AppStatus_AS_AVAILABLE, AppType: "pegasus", AppName: "t", AppID: 2,
		PartitionCount: n, IsStateful: true, MaxReplicaCount: 3, Envs: map[string]string{}}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := stub.create(base.Gpid{Appid: 2, PartitionIndex: int32(i)}, info); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	perDisk := map[string]int{}
	for _, p := range stub.all() {
		perDisk[p.disk.tag]++
	}
	if perDisk["ssd1"] != n/2 || perDisk["ssd2"] != n/2 {
		t.Fatalf("replicas per disk: %v, want %d on each", perDisk, n/2)
	}
}

// rocksdb_block_cache_capacity bounds the server's block cache, not each
// replica's: the stub makes one cache of that size and hands it to every store.
func TestReplicasShareOneBlockCache(t *testing.T) {
	const size = 32 << 20
	stub, err := Open(Options{
		Self:        "127.0.0.1:1",
		ClusterName: "onebox",
		MetaServers: []string{"127.0.0.1:2"},
		DataDirs:    []DataDir{{Tag: "ssd1", Dir: t.TempDir()}},
		Storage:     storage.Options{BlockCacheSize: size},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	if stub.cache == nil || stub.opts.Storage.Cache != stub.cache || stub.cache.MaxSize() != size {
		t.Fatalf("no shared cache of %d bytes: %v", size, stub.cache)
	}
	info := &layer2.AppInfo{Status: layer2.AppStatus_AS_AVAILABLE, AppType: "pegasus", AppName: "t", AppID: 2,
		PartitionCount: 2, IsStateful: true, MaxReplicaCount: 3, Envs: map[string]string{}}
	for i := range 2 {
		if _, err := stub.create(base.Gpid{Appid: 2, PartitionIndex: int32(i)}, info); err != nil {
			t.Fatal(err)
		}
	}
	// Closing the stub (deferred) closes both stores, then drops the stub's own
	// reference: a store that released the shared cache as its own would make
	// Pebble panic on a negative reference count there.
}
