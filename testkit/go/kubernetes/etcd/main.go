// etcd, built from the go.etcd.io/etcd/server/v3 module at the version Kubernetes itself pins,
// so the API server under test talks to the etcd it was released with.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
