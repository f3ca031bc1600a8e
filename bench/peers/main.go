package main

import (
	_ "github.com/pegasusgo/pegasus/cmd/pegasus_bench/bench"
	_ "github.com/redis/go-redis/v9"
	_ "go.etcd.io/etcd/client/v3"
)

func main() {}
