# Sourced by scripts/serve and scripts/test: installs the Debian packages
# babelcast needs, only when some are missing, so a fresh Debian machine with
# Go is all it takes.

# The offline engine: speech recognition, translation, speech synthesis;
# recordings of a person reading, to try the README's quick start with; and
# the Opus codec, which babelcast links through cgo (headers, pkg-config and
# a C compiler to build with).
RUN_PACKAGES="pocketsphinx pocketsphinx-en-us apertium apertium-eng-spa apertium-eng-cat espeak-ng pocketsphinx-testdata libopus-dev libopusfile-dev pkg-config gcc libc6-dev"
# Tests also drive a headless browser.
TEST_PACKAGES="$RUN_PACKAGES chromium"

# The browser tests check every page with axe-core, from the npm registry,
# pinned (test/browser/access_test.go names the same version).
AXE_VERSION="4.14.1"

# install_axe puts axe-core into test/output/node_modules (gitignored),
# once, with the machine's npm (Debian's npm package where there is none).
install_axe() {
	[ -f test/output/node_modules/axe-core/package.json ] &&
		grep -q "\"version\": \"$AXE_VERSION\"" test/output/node_modules/axe-core/package.json && return 0
	command -v npm >/dev/null 2>&1 || install_packages npm
	echo "Installing axe-core $AXE_VERSION for the browser tests" >&2
	mkdir -p test/output
	npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix test/output "axe-core@$AXE_VERSION" >/dev/null
}

install_packages() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "Installing Debian packages:$missing" >&2
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	# shellcheck disable=SC2086
	$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

require_go() {
	if ! command -v go >/dev/null 2>&1; then
		[ -x /usr/local/go/bin/go ] && export PATH="$PATH:/usr/local/go/bin"
	fi
	command -v go >/dev/null 2>&1 || { echo "babelcast needs Go (https://go.dev/doc/install)" >&2; exit 1; }
}
