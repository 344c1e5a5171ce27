#!/usr/bin/env bash
# The publishable crates stay publishable (README.md, "Publishing"):
#   1. every crate without `publish = false` has the crates.io metadata
#      (description, 1-5 keywords, categories from crates.io's list, a
#      readme that exists, a docs.rs `documentation`, a license), all of
#      them the same `repository` (today: none, on purpose), and every
#      crate of the workspace the same `rust-version`;
#   2. the toolchain CI runs is at least that `rust-version` — the MSRV we
#      state is the one CI builds and tests with, never an older one we
#      cannot check;
#   3. no published source reaches outside its crate (`include_str!`,
#      `include_bytes!`, `#[path]` with `../..`): a package holds only its
#      own directory;
#   4. `cargo package` accepts every publishable crate together (path
#      dependencies carry versions, the packaged manifests are valid).
#      `--no-verify`: verifying rebuilds every packaged crate from its
#      .crate file, minutes on this machine (README.md, "Publishing", has
#      the measurement), for what step 3 and the workspace build already
#      show.
set -euo pipefail
cd "$(dirname "$0")/.."

metadata=$(cargo metadata --no-deps --format-version 1)

# crates.io's category slugs that we use or may reach for; crates.io
# refuses unknown ones at publish time, which `cargo package` does not check.
categories='asynchronous command-line-utilities database database-implementations
development-tools development-tools::profiling development-tools::testing
network-programming parser-implementations web-programming
web-programming::http-server'

published=$(jq -r '.packages[] | select(.publish == null) | .name' <<<"$metadata" | sort)
[ -n "$published" ] || { echo "no publishable crate found" >&2; exit 1; }
fail=0
problem() { echo "publish check: $*" >&2; fail=1; }

for name in $published; do
  pkg=$(jq -c --arg n "$name" '.packages[] | select(.name == $n)' <<<"$metadata")
  field() { jq -r ".$1 // empty" <<<"$pkg"; }
  dir=$(dirname "$(field manifest_path)")
  [ -n "$(field description)" ] || problem "$name: no description"
  [ -n "$(field license)" ] || problem "$name: no license"
  # The licence texts ship in every package (links to the workspace's).
  for text in LICENSE-MIT LICENSE-APACHE; do
    [ -f "$dir/$text" ] || problem "$name: no $text in the crate (a package holds only its own directory)"
  done
  nkw=$(jq '.keywords | length' <<<"$pkg")
  { [ "$nkw" -ge 1 ] && [ "$nkw" -le 5 ]; } || problem "$name: $nkw keywords (crates.io takes 1 to 5)"
  for kw in $(jq -r '.keywords[]' <<<"$pkg"); do
    [[ "$kw" =~ ^[a-zA-Z][a-zA-Z0-9_-]{0,19}$ ]] || problem "$name: keyword '$kw' is not one crates.io accepts"
  done
  ncat=$(jq '.categories | length' <<<"$pkg")
  { [ "$ncat" -ge 1 ] && [ "$ncat" -le 5 ]; } || problem "$name: $ncat categories (1 to 5)"
  for cat in $(jq -r '.categories[]' <<<"$pkg"); do
    grep -qxF "$cat" <<<"$(tr ' ' '\n' <<<"$categories")" || problem "$name: category '$cat' is not a crates.io slug"
  done
  readme=$(field readme)
  { [ -n "$readme" ] && [ -f "$dir/$readme" ]; } || problem "$name: readme '$readme' missing"
  [[ "$(field documentation)" == https://docs.rs/* ]] || problem "$name: documentation is not a docs.rs URL"
  [ -n "$(field rust_version)" ] || problem "$name: no rust-version"
  escapes=$(grep -rnE '(include_str|include_bytes)!\("\.\./\.\.|#\[path = "\.\./\.\.' "$dir/src" || true)
  [ -z "$escapes" ] || problem "$name: sources reach outside the crate:
$escapes"
done

# One MSRV for every crate of the workspace, one repository for every
# published crate.
msrvs=$(jq -r '[.packages[] | (.rust_version // "none")] | unique | join(" ")' <<<"$metadata")
[ "$(wc -w <<<"$msrvs")" = 1 ] && [ "$msrvs" != none ] || problem "crates declare different rust-versions (or none): $msrvs"
repos=$(jq -r '[.packages[] | select(.publish == null) | (.repository // "none")] | unique | join(" ")' <<<"$metadata")
[ "$(wc -w <<<"$repos")" = 1 ] || problem "published crates declare different repositories: $repos"

# The toolchain is at least the declared MSRV.
msrv=${msrvs%% *}
rustc_version=$(rustc --version | awk '{print $2}')
lowest=$(printf '%s\n%s\n' "$msrv" "$rustc_version" | sort -V | head -n 1)
[ "$lowest" = "$msrv" ] || problem "rustc $rustc_version is older than the declared rust-version $msrv"

[ "$fail" = 0 ] || exit 1
echo "rust-version $msrv for every crate, checked with rustc $rustc_version; metadata of $(wc -w <<<"$published") publishable crates checked"

# Package them all together (cargo resolves their path dependencies to one
# another through a local registry). --allow-dirty: the check is about the
# tree being tested, committed or not.
unpublished=$(jq -r '.packages[] | select(.publish != null) | "--exclude " + .name' <<<"$metadata")
# shellcheck disable=SC2086
cargo package --workspace --no-verify --allow-dirty --quiet $unpublished
echo "cargo package: ok for $(wc -w <<<"$published") crates"
