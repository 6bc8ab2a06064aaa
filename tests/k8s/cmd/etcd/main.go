// Command etcd is upstream's etcd server, built from the pinned
// go.etcd.io/etcd/server/v3 module (same main body as etcd's server/main.go).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
