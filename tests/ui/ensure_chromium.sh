#!/bin/sh
# Debian's Chromium for the browser tests of the session browser, installed when missing.
# Runs as root on CI and developer machines (apt-get); a browser test that cannot run fails.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium
