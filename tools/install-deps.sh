#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs the Debian packages kflow's build and tests need, if missing.
# Idempotent and quick when everything is there. Needs root (apt-get).
set -euo pipefail

packages=(
	# make generate / make lint: the pinned compiler and the system headers
	clang-19 llvm-19 clang-format-19 libbpf-dev linux-libc-dev
	# privileged tests: namespaces, veth, offload switches
	iproute2 ethtool
	# interop tests: third-party collectors, probes and dissectors
	nfdump tshark pmacct softflowd fprobe
	# make bench-compare: replay and load generators
	tcpreplay netsniff-ng
	# ClickHouse tests: the tests start their own servers on loopback ports
	# with private data directories; a system service the package may start
	# is never used (and holds none of the ports the tests pick)
	clickhouse-server clickhouse-client
	# make vmtest: the emulator, and xz for the kernels' compressed modules
	# (apt-get download fetches the kernels, dpkg-deb unpacks them)
	qemu-system-x86 xz-utils
	# the web page's browser tests: headless Chromium, driven from Node
	chromium fonts-dejavu-core
)
# Node and npm (the page's build and browser tests): the machine image
# carries Node 20; Debian's packages stand in where it has none (the
# browser tests run on them; rebuilding the page needs Node 20.19 or later).
if ! command -v node >/dev/null 2>&1; then
	packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	exit 0
fi
if [[ $(id -u) != 0 ]]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root or install them with apt-get" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
