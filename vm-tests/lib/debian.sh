# vm-tests/lib/debian.sh: the Debian mirrors of this machine's apt sources,
# which the tiers build their images from. Sourced.

# The mirror of this machine's apt sources (deb822 first, then one-line).
debian_mirror() {
  local m
  m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)[[:space:]]*$/\1/p' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 || true)
  if [[ -z $m ]]; then
    m=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 ~ /\/debian\/?$/ {print $2; exit}' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  fi
  [[ -n $m ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d}"
  echo "${m%/}"
}

# The security mirror of the same sources; else the one beside the mirror
# (…/debian-security, as deb.debian.org and its mirrors lay it out).
debian_security_mirror() {
  local m
  m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian-security\)\/*[[:space:]]*$/\1/p' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 || true)
  if [[ -z $m ]]; then
    m=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 ~ /\/debian-security\/?$/ {print $2; exit}' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  fi
  [[ -n $m ]] || m=$(debian_mirror)-security
  echo "${m%/}"
}
