#!/bin/bash
# install-deps.sh - install everything ferryfs needs to build, test and demo on Debian 12,
# from Debian's packages and the npm registry only. Idempotent: a second run installs
# nothing and takes a second. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(
	build-essential autoconf automake pkg-config            # build
	libfuse3-dev fuse3                                      # FUSE
	libcurl4-openssl-dev libssl-dev libexpat1-dev           # S3 client: HTTP, SigV4, XML
	zlib1g-dev                                              # ferryctl plan: S3 Inventory CSV.gz
	libnfs-dev libnfs-utils                                 # NFS client, nfs-ls/nfs-cat/nfs-cp
	liblmdb-dev lmdb-utils                                  # the ledger
	libcriterion-dev                                        # unit tests
	clang-14 libclang-rt-14-dev llvm-14                     # fuzzing: libFuzzer runtime, symbolizer
	nfs-ganesha nfs-ganesha-vfs rpcbind                     # a real NFS server for tests
	radosgw ceph-mon ceph-osd ceph-common uuid-runtime      # Ceph RGW: an S3 that verifies
	awscli python3 python3-botocore                         # independent S3 clients for tests
	python3-hypothesis                                      # model-based tests (model.sh)
	attr curl procps util-linux psmisc                      # getfattr, curl, pgrep, flock, fuser
	iproute2 python3-matplotlib                             # rehearse.sh: netns, the timeline
	openssl mount e2fsprogs                                 # test certs; losetup; mkfs.ext4, chattr
)
# --bench: also the peers the benchmark compares with (contrib/bench-compare.sh)
[ "${1:-}" = --bench ] && pkgs+=(s3fs)
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: run as root to install: ${missing[*]}" >&2
		exit 1
	fi
	echo "install-deps: ${#missing[@]} Debian package(s) to install: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	echo "install-deps: apt-get update (the package lists)"
	apt-get update -qq
	echo "install-deps: apt-get install (downloading and unpacking: a minute or two)"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# s3rver, pinned by tests/s3rver/package-lock.json
if [ ! -x tests/s3rver/node_modules/.bin/s3rver ]; then
	echo "install-deps: installing s3rver (a local S3) with npm (tests/s3rver/package-lock.json)"
	(cd tests/s3rver && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
echo "install-deps: all dependencies present"
