# Havre: `make run` starts a working cluster, `make test` runs every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
DATA_DIR ?= /var/lib/havre
PORT ?= 6443

.PHONY: all build deps run demo test bench fuzz clean

all: build

deps:
	bash hack/install-deps.sh

build:
	go generate ./internal/agent/images/pause
	go build -trimpath -o bin/havre ./cmd/havre
# havre-kubectl (what `havre kubectl` runs), stamped with the Kubernetes
# version of k8s.io/kubectl (v0.X.Y is v1.X.Y) as upstream's builds are.
	v=$$(go list -m -f '{{.Version}}' k8s.io/kubectl) && v=v1.$${v#v0.} && minor=$${v#v1.} && minor=$${minor%%.*} && \
	ld="" && for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do \
		ld="$$ld -X $$p.gitVersion=$$v -X $$p.gitMajor=1 -X $$p.gitMinor=$$minor"; done && \
	go build -trimpath -ldflags "$$ld" -o bin/havre-kubectl ./cmd/havre-kubectl

# Installs what is needed, builds havre, starts a server in the background
# (log in $(DATA_DIR)/havre.log) and applies the demo workload.
run: deps build
	bash hack/run.sh "$(DATA_DIR)" "$(PORT)"

test:
	bash hack/test.sh

# Every Go fuzz target for FUZZTIME each (CI: 10s; e.g. make fuzz FUZZTIME=10m).
fuzz:
	bash hack/fuzz.sh

bench:
	bash hack/bench.sh

clean:
	rm -rf bin
