// Tiny static HTTP server used to populate the recorded Docker Swarm state.
// It listens on every port listed in $PORTS (comma separated, default "80")
// and serves a few lines of Prometheus text on /metrics.
// With the argument "exit" it prints "done" and exits 0 (for jobs).
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "exit" {
		// Used by the replicated-job service: finish at once.
		fmt.Println("done")
		return
	}
	ports := os.Getenv("PORTS")
	if ports == "" {
		ports = "80"
	}
	host, _ := os.Hostname()
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP vigie_fixture_up Always 1.\n# TYPE vigie_fixture_up gauge\nvigie_fixture_up{host=%q} 1\n", host)
		fmt.Fprintf(w, "# HELP vigie_fixture_requests_total Requests served.\n# TYPE vigie_fixture_requests_total counter\nvigie_fixture_requests_total 1\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	list := strings.Split(ports, ",")
	for _, p := range list[1:] {
		go func(p string) { log.Fatal(http.ListenAndServe(":"+p, mux)) }(p)
	}
	log.Fatal(http.ListenAndServe(":"+list[0], mux))
}
