// Command peer_go_echo is the Go echo peer for spindle's server comparison
// (bench/peers/servers.md).
//
// Usage: peer_go_echo PORT WORKERS
//
// net.Listen, one goroutine per accepted connection, each running a plain
// read/write loop over a 16 KiB buffer until EOF: what a Go user writes
// (io.Copy(conn, conn) does the same with a 32 KiB buffer). Go sets
// TCP_NODELAY on accepted TCP connections by default; it is set again here
// to be explicit. GOMAXPROCS is WORKERS. SIGTERM/SIGINT exit 0 at once.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

func serve(c net.Conn) {
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	buf := make([]byte, 16*1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a socket error
		}
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: peer_go_echo PORT WORKERS")
		os.Exit(2)
	}
	port, err1 := strconv.Atoi(os.Args[1])
	workers, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || port <= 0 || port > 65535 || workers <= 0 {
		fmt.Fprintln(os.Stderr, "peer_go_echo: bad PORT or WORKERS")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(workers)

	addr := "127.0.0.1:" + strconv.Itoa(port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peer_go_echo:", err)
		os.Exit(1)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		os.Exit(0)
	}()

	fmt.Printf("listening on %s\n", addr)
	for {
		c, err := ln.Accept()
		if err != nil {
			// Out of fds and the like: back off briefly and retry, as
			// net/http's Server.Serve does.
			fmt.Fprintln(os.Stderr, "peer_go_echo: accept:", err)
			time.Sleep(5 * time.Millisecond)
			continue
		}
		go serve(c)
	}
}
