// Command peer_go_http is the Go net/http peer for spindle's server
// comparison (bench/peers/servers.md, "full" work).
//
// Usage: peer_go_http PORT WORKERS
//
// The handler is what a Go user writes: http.HandleFunc("/", ...) setting
// Content-Type text/plain and writing "Hello, World!". net/http does the
// rest (request parsing, keep-alive, bodies, Connection: close, the cached
// Date header, Content-Length for a small body). The listener comes from
// net.Listen so the "listening on" line is printed only once it accepts; Go
// sets TCP_NODELAY on accepted TCP connections by default. GOMAXPROCS is
// WORKERS. SIGTERM/SIGINT exit 0 at once.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: peer_go_http PORT WORKERS")
		os.Exit(2)
	}
	port, err1 := strconv.Atoi(os.Args[1])
	workers, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || port <= 0 || port > 65535 || workers <= 0 {
		fmt.Fprintln(os.Stderr, "peer_go_http: bad PORT or WORKERS")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(workers)

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("Hello, World!"))
	})

	addr := "127.0.0.1:" + strconv.Itoa(port)
	ln, err := net.Listen("tcp", addr) // SO_REUSEADDR, backlog from somaxconn
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer_go_http:", err)
		os.Exit(1)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		os.Exit(0)
	}()

	fmt.Printf("listening on %s\n", addr) // fmt.Printf writes os.Stdout unbuffered
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, "peer_go_http:", err)
		os.Exit(1)
	}
}
