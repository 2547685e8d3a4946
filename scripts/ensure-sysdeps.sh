#!/usr/bin/env bash
# Installs the system tools the tests use as independent readers: exiftool, exiv2 and Debian's chromium; and a
# font with Japanese and Cyrillic glyphs (IPA Gothic) that the watermark font tests draw with.
# Installs only what is missing, only with apt-get as root; otherwise says what to install.
set -euo pipefail
need=()
command -v exiftool >/dev/null 2>&1 || need+=(libimage-exiftool-perl)
command -v exiv2 >/dev/null 2>&1 || need+=(exiv2)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -f /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf ] || need+=(fonts-ipafont-gothic)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "warning: missing ${need[*]}; install them (e.g. sudo apt-get install ${need[*]}) or the tests that use them will skip" >&2
fi
