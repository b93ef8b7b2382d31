#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Container images of the two daemons, from their Debian packages
# (deploy/containers/README.md):
#
#   bash scripts/build-images.sh [--rebuild] [--rebuild-base]
#
#   1. the base, localhost/vigil-debian12-base:bookworm: Debian 12 made by
#      debootstrap --variant=minbase from the mirror of this machine's apt
#      sources, with bookworm-updates and bookworm-security applied, docs
#      and apt lists left out, then `podman import`ed. No registry needed.
#      Cached: reused while it is younger than VIGIL_BASE_MAX_AGE_DAYS (7)
#      and made by the same recipe and mirrors; its tar is kept in
#      BUILD_ROOT/build-img/ and re-imported if the image was removed.
#   2. the .deb packages: built and packed with CPack in BUILD_ROOT/build-pkg
#      (the tree of scripts/test-packages.sh, under its lock; an up-to-date
#      tree is not recompiled), into build-pkg/debs-image/; or taken from
#      VIGIL_DEBS_DIR when set (vigil-collector_VERSION-*.deb, vigil-agent_...).
#   3. localhost/vigil-collector:VERSION and localhost/vigil-agent:VERSION
#      (VERSION from CMakeLists.txt, as deploy/kubernetes expects), from
#      deploy/containers/Containerfile.*. An image whose label
#      org.vigil.build-key matches the packages' contents, its Containerfile
#      and the base is fresh and not rebuilt.
#
# --rebuild: build both images again; --rebuild-base: the base too.
# Root (debootstrap, rootful podman). The last two lines of output name the
# images: "image collector localhost/vigil-collector:0.1.0 built|fresh".
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
root=${VIGIL_BUILD_ROOT:-$here}
work=$root/build-img
max_age_days=${VIGIL_BASE_MAX_AGE_DAYS:-7}
base_ref=localhost/vigil-debian12-base:bookworm
# Bump when the base recipe below changes: the cached base is then remade.
base_recipe=1
t0=$(date +%s)

say() { printf 'images: [%3d s] %s\n' $(($(date +%s) - t0)) "$*"; }
fail() {
  printf 'images: FAIL: %s\n' "$*" >&2
  exit 1
}

rebuild=0
rebuild_base=0
for a in "$@"; do
  case $a in
  --rebuild) rebuild=1 ;;
  --rebuild-base) rebuild=1 rebuild_base=1 ;;
  -h | --help)
    sed -n '3,27p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) fail "unknown argument $a (--rebuild, --rebuild-base)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, podman)"
bash scripts/deps.sh >/dev/null
for t in podman debootstrap dpkg-deb; do
  command -v $t >/dev/null || fail "$t is missing (bash scripts/deps.sh installs it)"
done
version=$(sed -n 's/^project(vigil VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[ -n "$version" ] || fail "no version in CMakeLists.txt"
arch=$(dpkg --print-architecture)
mkdir -p "$work"

# Podman as the tests run it here: runc (crun fails on hybrid cgroups),
# ulimits under the machine's hard limit; RUN steps reach the Debian mirror
# through the host's network, as apt on the host does.
podman_build=(podman build --runtime runc --network host --pull=never --layers=false
  --ulimit nofile=20000:20000 --ulimit nproc=1000:1000)

# apt options of this machine that a build needs too (a mirror pinned to a
# snapshot has Release files past their Valid-Until). Passed per command,
# never written into an image.
apt_opts=()
while read -r k v; do
  case $k in
  Acquire::Check-Valid-Until | Acquire::Check-Date) apt_opts+=(-o "$k=${v//[\";]/}") ;;
  esac
done < <(apt-config dump 2>/dev/null)

# --- mirrors of this machine's apt sources ---------------------------------
# mirror SUITE: the first URI that serves SUITE (sources.list or deb822).
mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$1" '$1 == "deb" { n = 2; if ($2 ~ /^\[/) { while ($n !~ /\]$/) n++; n++ }
      if ($(n + 1) == s) { print $n; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$1" 'BEGIN { RS = ""; FS = "\n" } {
      uri = ""; ok = 0; deb = 0
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^URIs:/) { split(substr($i, 6), u, " "); uri = u[1] }
        if ($i ~ /^Types:/ && $i ~ /(^|[ :])deb( |$)/) deb = 1
        if ($i ~ /^Enabled: *no/) deb = 0
        if ($i ~ /^Suites:/) { n = split(substr($i, 8), w, " "); for (j = 1; j <= n; j++) if (w[j] == s) ok = 1 }
      }
      if (ok && deb && uri != "") { print uri; exit }
    }' "$f"
  done
}
deb_mirror=${VIGIL_DEBIAN_MIRROR:-$(mirror bookworm | head -n 1)}
sec_mirror=${VIGIL_DEBIAN_SECURITY_MIRROR:-$(mirror bookworm-security | head -n 1)}
[ -n "$deb_mirror" ] || fail "no Debian mirror for bookworm in /etc/apt/sources.list*; set VIGIL_DEBIAN_MIRROR"
[ -n "$sec_mirror" ] || sec_mirror=http://deb.debian.org/debian-security

# --- 1. the base -------------------------------------------------------------
label() { # label IMAGE NAME: the image's label NAME, empty if none
  { podman image inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; } |
    sed 's/^<no value>$//'
}
base_key=$(printf 'recipe %s\nsuite bookworm minbase\n%s\n%s\n' "$base_recipe" "$deb_mirror" \
  "$sec_mirror" | sha256sum | cut -c1-16)
base_tar=$work/vigil-debian12-base-$base_key.tar
now=$(date +%s)
max_age=$((max_age_days * 86400))

base_fresh() { # the image exists, from this recipe and mirrors, younger than the limit
  local built
  [ "$(label $base_ref org.vigil.base-key)" = "$base_key" ] || return 1
  built=$(label $base_ref org.vigil.base-built)
  [ -n "$built" ] && [ $((now - built)) -lt "$max_age" ]
}

import_base() { # import_base TAR BUILT_EPOCH
  podman import -q --change "LABEL org.vigil.base-key=$base_key" \
    --change "LABEL org.vigil.base-built=$2" --change 'CMD ["/bin/bash"]' \
    "$1" "$base_ref" >/dev/null
}

make_base() {
  local tmp rootfs built
  tmp=$(mktemp -d "$work/base.XXXXXX")
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  rootfs=$tmp/rootfs
  say "debootstrap --variant=minbase bookworm from $deb_mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$deb_mirror" >"$tmp/debootstrap.log" 2>&1 ||
    fail "debootstrap: $(tail -n 20 "$tmp/debootstrap.log")"
  # Every later apt-get: bookworm, its updates and security, signed by the
  # archive keyring that minbase carries (apt depends on it).
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $deb_mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $sec_mirror
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # No documentation, manual pages or translations in what dpkg installs
  # (copyright files stay); apt keeps no caches and never recommends.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/01-vigil-image" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/01-vigil-image" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale}/*
  # the point release's security and stable updates
  say "bookworm-updates and bookworm-security into the base"
  mount -t proc proc "$rootfs/proc"
  set +e
  {
    chroot "$rootfs" apt-get "${apt_opts[@]}" -q update &&
      chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" -q -y upgrade
  } >"$tmp/upgrade.log" 2>&1
  rc=$?
  set -e
  umount "$rootfs/proc"
  [ $rc -eq 0 ] || fail "apt-get upgrade in the base: $(tail -n 20 "$tmp/upgrade.log")"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/apt \
    "$rootfs"/var/log/dpkg.log "$rootfs"/var/log/alternatives.log "$rootfs"/var/log/bootstrap.log \
    "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old "$rootfs"/debootstrap
  chmod 1777 "$rootfs/tmp"
  built=$(date +%s)
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$tmp/base.tar" .
  rm -f "$work"/vigil-debian12-base-*.tar
  mv "$tmp/base.tar" "$base_tar"
  touch -d "@$built" "$base_tar"
  rm -rf "$tmp"
  trap - EXIT
  import_base "$base_tar" "$built"
}

if [ $rebuild_base = 0 ] && base_fresh; then
  say "base $base_ref: cached ($(podman image inspect -f '{{.Size}}' $base_ref | numfmt --to=si)B)"
elif [ $rebuild_base = 0 ] && [ -f "$base_tar" ] &&
  [ $((now - $(stat -c %Y "$base_tar"))) -lt "$max_age" ]; then
  import_base "$base_tar" "$(stat -c %Y "$base_tar")"
  say "base $base_ref: imported from $base_tar"
else
  make_base
  say "base $base_ref: made ($(podman image inspect -f '{{.Size}}' $base_ref | numfmt --to=si)B)"
fi
base_id=$(podman image inspect -f '{{.Id}}' $base_ref)

# --- 2. the packages -----------------------------------------------------------
if [ -n "${VIGIL_DEBS_DIR:-}" ]; then
  debs=$VIGIL_DEBS_DIR
else
  bdir=$root/build-pkg
  debs=$bdir/debs-image
  # scripts/test-packages.sh's lock: it rebuilds and repacks this tree.
  exec 9>/run/lock/vigil-test-packages.lock
  flock -w 900 9 || fail "scripts/test-packages.sh holds the lock of $bdir for 15 min"
  say "packages: building in $bdir"
  cmake -S . -B "$bdir" -DVIGIL_PACKAGE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DVIGIL_DEB_RELEASE=1 >/dev/null
  cmake --build "$bdir" -j "$(nproc)" --target vigil-collector vigil-agent >/dev/null
  # Packed again (7 s) only when something they hold is newer than they are.
  # none yet is no error (pipefail would make it one)
  oldest=$(ls -tr "$debs"/vigil-collector_*.deb "$debs"/vigil-agent_*.deb 2>/dev/null |
    head -n 1 || true)
  if [ -z "$oldest" ] || [ "$(ls "$debs"/*.deb 2>/dev/null | wc -l)" != 2 ] ||
    [ -n "$(find "$bdir/bin/vigil-collector" "$bdir/bin/vigil-agent" deploy web cmake \
      CMakeLists.txt -newer "$oldest" -print -quit)" ]; then
    rm -rf "$debs"
    (cd "$bdir" && cpack -G DEB -B "$debs" >"$bdir/cpack-image.log" 2>&1) ||
      fail "cpack: $(tail -n 20 "$bdir/cpack-image.log")"
    rm -rf "$debs/_CPack_Packages"
  fi
  exec 9>&-
fi
deb_of() { # the newest vigil-DAEMON_VERSION-*_ARCH.deb in $debs
  local f
  f=$(ls -t "$debs"/vigil-"$1"_"$version"-*_"$arch".deb 2>/dev/null | head -n 1 || true)
  [ -n "$f" ] || fail "no vigil-$1_$version-*_$arch.deb in $debs"
  echo "$f"
}
# What a package holds, without the dates that each cpack run changes
# (the changelog's): the control files, md5sums of every file included.
deb_key() {
  dpkg-deb --ctrl-tarfile "$1" | tar -xO | grep -v 'changelog\.Debian\.gz$' | sha256sum | cut -c1-64
}

# --- 3. the images ---------------------------------------------------------------
status=()
for d in collector agent; do
  deb=$(deb_of $d)
  ref=localhost/vigil-$d:$version
  cf=deploy/containers/Containerfile.$d
  key=$( { echo "$base_id"; cat "$cf"; deb_key "$deb"; } | sha256sum | cut -c1-16)
  if [ $rebuild = 0 ] && [ "$(label "$ref" org.vigil.build-key)" = "$key" ]; then
    say "$ref: fresh (same base, Containerfile and $(basename "$deb"))"
    status[${#status[@]}]="image $d $ref fresh"
    continue
  fi
  ctx=$work/context-$d
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp "$deb" "$ctx/"
  t=$(date +%s)
  "${podman_build[@]}" -f "$cf" --build-arg "APT_OPTIONS=${apt_opts[*]}" \
    --build-arg "BASE=$base_ref" --label "org.vigil.build-key=$key" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.title=vigil-$d" \
    --label "org.opencontainers.image.licenses=Apache-2.0" \
    -t "$ref" "$ctx" >"$work/build-$d.log" 2>&1 ||
    fail "podman build $ref: $(tail -n 30 "$work/build-$d.log")"
  rm -rf "$ctx"
  size=$(podman image inspect -f '{{.Size}}' "$ref")
  say "$ref: built in $(($(date +%s) - t)) s from $(basename "$deb"), $(numfmt --to=si "$size")B"
  status[${#status[@]}]="image $d $ref built"
done
printf '%s\n' "${status[@]}"
