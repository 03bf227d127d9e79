#!/usr/bin/env bash
# Runs the steps after the kernel (the Vagrantfile runs steps/00-kernel.sh
# first and reboots), then the scenarios. Each step is a script of its own
# under steps/ and can be run by hand in the same order (README.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for step in 10-tools 20-cluster 30-image 40-deploy; do
  echo "==== steps/$step.sh"
  bash "$here/steps/$step.sh"
done
echo "==== scenarios.sh"
bash "$here/scenarios.sh"
