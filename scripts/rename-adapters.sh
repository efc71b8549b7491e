#!/usr/bin/env bash
# rename-adapters.sh: give every adapter a directory (and module path) equal
# to its package name, never the name of the library it wraps (issue 20,
# item 3; see docs/ADAPTERS.md):
#
#	adapters/gin     -> adapters/slgin     (package slgin)
#	adapters/grpc    -> adapters/slgrpc    (package slgrpc)
#	adapters/sql     -> adapters/slsql     (package slsql)
#	adapters/gorm    -> adapters/slgorm    (package slgorm)
#	adapters/goredis -> adapters/slredis   (package goredis  -> slredis)
#	adapters/kafka   -> adapters/slkafka   (package kafka    -> slkafka)
#	adapters/sarama  -> adapters/slsarama  (package sarama   -> slsarama)
#	adapters/amqp    -> adapters/slamqp    (package amqp     -> slamqp)
#	adapters/nats    -> adapters/slnats    (package nats     -> slnats)
#
# Sub-packages and nested modules follow their parent (adapters/sql/sqltest,
# adapters/gorm/gormtest, adapters/grpc/envbalancer), and so do test
# fixtures that mirror the paths (vet/lostctx/testdata/src/.../adapters/*).
#
# It does, in the git checkout it is run in (default: the repository that
# holds this script):
#  1. git mv every directory .../adapters/<old> to .../adapters/<new>;
#  2. rewrites "adapters/<old>" to "adapters/<new>" in every tracked text
#     file (import paths, module lines, go.work, replace directives, README,
#     docs, .ci, orchestrion yml, comments);
#  3. renames the package clauses goredis/kafka/sarama/amqp/nats (and their
#     _test packages) in the moved directories;
#  4. rewrites qualified identifiers (goredis.X -> slredis.X, ...) in the
#     moved packages' own files (doc examples) and in every Go file that
#     imports a renamed package without an alias; an aliased import keeps
#     its alias. sarama.X is never rewritten in adapters/sarama itself,
#     where it names github.com/IBM/sarama;
#  5. gofmt -w on every Go file it changed (import order).
#
# It is idempotent: run twice, the second run changes nothing. It commits
# nothing: check `git status`, build, test, then commit.
#
# Run it after all branches that touch adapters/ are merged:
#
#	bash scripts/rename-adapters.sh && go build ./... (every go.work module)
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
git rev-parse --is-inside-work-tree >/dev/null

# old -> new directory (= package) names.
declare -A dir=(
	[gin]=slgin [grpc]=slgrpc [sql]=slsql [gorm]=slgorm [goredis]=slredis
	[kafka]=slkafka [sarama]=slsarama [amqp]=slamqp [nats]=slnats
)
# Packages whose name changes (the others are already sl*).
declare -A pkg=(
	[goredis]=slredis [kafka]=slkafka [sarama]=slsarama [amqp]=slamqp [nats]=slnats
)
olds="gin|grpc|sql|gorm|goredis|kafka|sarama|amqp|nats"

changed=$(mktemp)
trap 'rm -f "$changed"' EXIT

# 1. Move the directories (every tracked one ending in adapters/<old>).
git ls-files -z | tr '\0' '\n' |
	perl -ne "print \"\$1\n\" if m{^((?:.*/)?adapters/(?:$olds))/}" | sort -u |
	while read -r from; do
		old=${from##*/}
		to=${from%/*}/${dir[$old]}
		if [ -e "$to" ]; then
			echo "rename-adapters: $to exists, leaving $from" >&2
			continue
		fi
		mkdir -p "$(dirname "$to")"
		git mv "$from" "$to"
		echo "moved $from -> $to"
	done

# 2. Paths in every tracked text file.
(git grep -lIzP "adapters/($olds)(?![A-Za-z0-9_])" -- . ':!scripts/rename-adapters.sh' 2>/dev/null || true) |
	tr '\0' '\n' | while read -r f; do
		perl -pi -e '
			BEGIN { %d = (gin=>"slgin", grpc=>"slgrpc", sql=>"slsql", gorm=>"slgorm",
				goredis=>"slredis", kafka=>"slkafka", sarama=>"slsarama", amqp=>"slamqp", nats=>"slnats") }
			s{adapters/(gin|grpc|sql|gorm|goredis|kafka|sarama|amqp|nats)(?![A-Za-z0-9_])}{adapters/$d{$1}}g' "$f"
		echo "$f" >>"$changed"
	done

# 3 and 4. Package clauses and qualified identifiers.
for old in "${!pkg[@]}"; do
	new=${pkg[$old]}
	newdir=${dir[$old]}
	# The moved directories (top level only: sub-packages keep their names).
	git ls-files -z | tr '\0' '\n' |
		perl -ne "print \"\$1\n\" if m{^((?:.*/)?adapters/$newdir)/[^/]+\\.go\$}" | sort -u |
		while read -r d; do
			for f in "$d"/*.go; do
				[ -e "$f" ] || continue
				before=$(cksum <"$f")
				perl -pi -e "s/^package ${old}(_test)?(\\s)/package ${new}\$1\$2/; s/^\\/\\/ Package ${old} /\\/\\/ Package ${new} /" "$f"
				if [ "$old" != sarama ]; then
					# In its own files old.X can only be this package (the
					# wrapped library is imported under another name).
					perl -pi -e "s/(?<![A-Za-z0-9_\"\\/])(?<!\\w\\.)${old}\\.(?=[A-Z])/${new}./g" "$f"
				fi
				[ "$before" = "$(cksum <"$f")" ] || echo "$f" >>"$changed"
			done
		done
	# Files importing the renamed package without an alias.
	(git grep -lIP "^\\s*(import\\s+)?\"[^\"]*/adapters/$newdir\"" -- '*.go' 2>/dev/null || true) |
		while read -r f; do
			before=$(cksum <"$f")
			perl -pi -e "s/(?<![A-Za-z0-9_\"\\/])(?<!\\w\\.)${old}\\.(?=[A-Z])/${new}./g" "$f"
			[ "$before" = "$(cksum <"$f")" ] || echo "$f" >>"$changed"
		done
done

# goredis.X in prose (README, docs): unambiguous, go-redis is package redis.
(git grep -lIP '(?<![A-Za-z0-9_/])(?<!\w\.)goredis\.(?=[A-Z])' -- '*.md' 2>/dev/null || true) |
	while read -r f; do perl -pi -e 's/(?<![A-Za-z0-9_\/])(?<!\w\.)goredis\.(?=[A-Z])/slredis./g' "$f"; done

# 5. gofmt what changed (an import path change can reorder imports).
{ sort -u "$changed" | grep '\.go$' || true; } | while read -r f; do
	if [ -e "$f" ]; then gofmt -w "$f"; fi
done
echo "rename-adapters: done; check git status, then build and test every go.work module"
