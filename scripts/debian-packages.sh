# Sourced by scripts/test and scripts/simulate: Debian packages the build and the tests need.

# Building: the Kerberos (SPNEGO) client links MIT GSSAPI, whose Rust bindings are generated
# with libclang at build time.
BUILD_PACKAGES=(libkrb5-dev libclang-dev pkg-config)
# Testing: real components the tests start on loopback (Prometheus; the MIT KDC and kadmind;
# BIND 9 with nsupdate and dig).
TEST_PACKAGES=(prometheus krb5-kdc krb5-admin-server krb5-user bind9 bind9-dnsutils)

ensure_debian_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    printf '\n==> installing Debian packages: %s\n' "${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}
