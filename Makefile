# Havre: `make run` starts a working cluster, `make test` runs every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
DATA_DIR ?= /var/lib/havre
PORT ?= 6443

.PHONY: all build deps run demo test bench clean

all: build

deps:
	bash hack/install-deps.sh

build:
	go build -trimpath -o bin/havre ./cmd/havre

# Installs what is needed, builds havre, starts a server in the background
# (log in $(DATA_DIR)/havre.log) and applies the demo workload.
run: deps build
	bash hack/run.sh "$(DATA_DIR)" "$(PORT)"

test:
	bash hack/test.sh

bench:
	bash hack/bench.sh

clean:
	rm -rf bin
