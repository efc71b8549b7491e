package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

// vetPkg is the shadowlane-vet command. It lives in its own module
// (github.com/shadowlane/shadowlane/vet) so that neither the core nor this
// CLI gains golang.org/x/tools: `shadowlane vet` only finds and runs it.
const vetPkg = "github.com/shadowlane/shadowlane/vet/cmd/shadowlane-vet"

// cmdVet runs shadowlane-vet on the given packages (./... by default). It
// uses $SHADOWLANE_VET, else shadowlane-vet on PATH, else `go run` of the
// command, which works inside a checkout of this repository (go.work).
func cmdVet(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintf(stdout, `usage: shadowlane vet [shadowlane-vet flags] [packages]

Reports code that loses the shadowlane mark (calls without a context,
gorm chains without WithContext, context.Background() where a request
context is in scope, goroutines started with it, unwired Redis/Kafka
clients). Runs $SHADOWLANE_VET, else shadowlane-vet from PATH, else
"go run %s".
Install it with: go install %s@latest
Flags of shadowlane-vet: -fix applies the suggested fixes, -everywhere,
-wiring=false; see "shadowlane-vet -h".
`, vetPkg, vetPkg)
		return exitOK
	}
	if len(args) == 0 || args[len(args)-1] == "" || args[len(args)-1][0] == '-' {
		args = append(args, "./...")
	}
	var cmd *exec.Cmd
	if bin := os.Getenv("SHADOWLANE_VET"); bin != "" {
		cmd = exec.Command(bin, args...)
	} else if bin, err := exec.LookPath("shadowlane-vet"); err == nil {
		cmd = exec.Command(bin, args...)
	} else {
		cmd = exec.Command("go", append([]string{"run", vetPkg}, args...)...)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	fmt.Fprintf(stderr, "shadowlane vet: %v (install the analyzer: go install %s@latest)\n", err, vetPkg)
	return 1
}
