#!/usr/bin/env bash
# Builds lookout-test/busybox:latest, a 2 MB image holding Debian's static busybox, with
# `docker import` (this engine has no registry). Idempotent. Needs busybox-static.
set -euo pipefail
TAG=${TAG:-lookout-test/busybox:latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}
if docker image inspect "$TAG" >/dev/null 2>&1; then exit 0; fi
case "$(ldd "$BUSYBOX" 2>&1 || true)" in
  *"not a dynamic"*|*"statically linked"*) ;;
  *) echo "make-test-image: $BUSYBOX is missing or not static (apt-get install -y busybox-static)" >&2; exit 1 ;;
esac
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,run,data}
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
"$BUSYBOX" --list-full | while read -r p; do
  [ -e "$root/$p" ] || ln -s /bin/busybox "$root/$p"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
tar --numeric-owner -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - "$TAG" >/dev/null
echo "make-test-image: built $TAG"
