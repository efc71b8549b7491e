package main

import (
	"flag"
	"log"
	"os"

	"github.com/shadowlane/shadowlane/shadow/rediskeys/internal/gen"
)

func main() {
	in := flag.String("in", "", "path of redis-commands.json")
	out := flag.String("out", "zz_commands.go", "Go file to write")
	flag.Parse()
	src, err := os.ReadFile(*in)
	if err != nil {
		log.Fatal(err)
	}
	code, err := gen.Generate(src)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, code, 0o644); err != nil {
		log.Fatal(err)
	}
}
