#!/usr/bin/env bash
# Builds the Debian base image that the Dockerfiles' unchanged `FROM debian:bookworm-slim`
# resolves to, with debootstrap + `docker import` (for hosts with no image registry).
# Does nothing when the tag already exists (FORCE=1 rebuilds). Needs root (debootstrap).
# Env: TAG (debian:bookworm-slim), SUITE (bookworm), MIRROR (from the host's apt sources), WORK.
set -euo pipefail
# shellcheck source=deploy-lib.sh
source "$(dirname "$0")/deploy-lib.sh"

TAG=${TAG:-debian:bookworm-slim}
SUITE=${SUITE:-bookworm}
WORK=${WORK:-/tmp/lookout-deploy}
if have_image "$TAG" && [ -z "${FORCE:-}" ]; then echo "base image $TAG: present"; exit 0; fi
[ "$(id -u)" -eq 0 ] || { echo "deploy-base-image: debootstrap needs root" >&2; exit 1; }
if ! command -v debootstrap >/dev/null; then
  echo "installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
MIRROR=${MIRROR:-$(detect_mirror "$SUITE")}
UPDATES=${UPDATES_MIRROR:-$(detect_mirror "$SUITE-updates" 2>/dev/null || true)}
SECURITY=${SECURITY_MIRROR:-$(detect_mirror "$SUITE-security" 2>/dev/null || true)}
ROOTFS=$WORK/rootfs-$(echo "$TAG" | tr '/:' '__')

mkdir -p "$WORK"; rm -rf "$ROOTFS"
t0=$SECONDS
debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
{
  echo "deb $MIRROR $SUITE main"
  if [ -n "$UPDATES" ]; then echo "deb $UPDATES $SUITE-updates main"; fi
  if [ -n "$SECURITY" ]; then echo "deb $SECURITY $SUITE-security main"; fi
} >"$ROOTFS/etc/apt/sources.list"
# A dated snapshot mirror needs the Release date checks off, as on the host.
if grep -rqs 'Check-Valid-Until "false"' /etc/apt/apt.conf /etc/apt/apt.conf.d/; then
  printf 'Acquire::Check-Valid-Until "false";\nAcquire::Check-Date "false";\n' \
    >"$ROOTFS/etc/apt/apt.conf.d/99lookout-no-date-check"
fi
# Slim like the official image: no docs/man/locales, no kept .debs, no recommends.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/01lookout-nodoc" <<'NODOC'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
NODOC
cat >"$ROOTFS/etc/apt/apt.conf.d/99lookout-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
  >"$ROOTFS/etc/apt/apt.conf.d/99lookout-no-recommends"
# Package scripts must never try to start services inside an image build.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"; chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"
rm -rf "$ROOTFS"/usr/share/doc/*/[!c]* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/*
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/tmp/* "$ROOTFS"/var/log/*.log
: >"$ROOTFS/etc/hostname"
t1=$SECONDS
tar --numeric-owner -C "$ROOTFS" -c . | docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$TAG" >/dev/null
rm -rf "$ROOTFS"
echo "base image $TAG: debootstrap $((t1-t0))s, import $((SECONDS-t1))s"
