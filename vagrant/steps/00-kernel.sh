#!/usr/bin/env bash
# Step 0 (root): a kernel the agent supports. Debian 12's own kernel (6.1) is
# too old (TCX links need 6.6; README.md), so this installs the current
# bookworm-backports kernel. A reboot is needed afterwards (the Vagrantfile
# reboots; by hand: `reboot`, then go on with step 10).
set -euo pipefail
if [ "$(printf '%s\n' 6.6 "$(uname -r | cut -d- -f1)" | sort -V | head -1)" = 6.6 ]; then
  echo "kernel $(uname -r) is recent enough"
  exit 0
fi
echo "deb http://deb.debian.org/debian bookworm-backports main" >/etc/apt/sources.list.d/backports.list
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports linux-image-amd64
echo "installed a backports kernel; reboot before step 10 (uname -r is still $(uname -r))"
