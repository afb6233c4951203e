#!/bin/bash
# Install this deployment's zip on a running instance: `sre-workshop-update-assets SHA256`.
# Shipped in every zip and installed as /usr/local/sbin/sre-workshop-update-assets by its activate.sh;
# `sre-workshop deploy` runs it through SSM Run Command after a stack update (see src/sre_workshop/aws/rollout.py).
# It fetches the zip named by the SSM parameter of /etc/sre-workshop/instance.env (written by the user data),
# refuses one whose sha256 is not the uploaded one, and does nothing if that hash is installed already.
set -euo pipefail
want=${1:?usage: sre-workshop-update-assets SHA256 of the zip to install}
set -a
. /etc/sre-workshop/instance.env
set +a
marker=/etc/sre-workshop/installed.sha256
if [ "$(cat "$marker" 2>/dev/null)" = "$want" ]; then
  echo "$ASSETS_ZIP $want: already installed"
  exit 0
fi
location=$(aws ssm get-parameter --name "$ASSETS_PARAMETER" --query Parameter.Value --output text)
work=$(mktemp -d /tmp/sre-workshop-update.XXXXXX)
trap 'rm -rf "$work"' EXIT
aws s3 cp --only-show-errors "${location}${ASSETS_ZIP}" "$work/assets.zip"
echo "$want  $work/assets.zip" | sha256sum --check --quiet -
unzip -q "$work/assets.zip" -d "$work/assets"
bash "$work/assets/activate.sh"
echo "$want" > "$marker"
echo "$ASSETS_ZIP $want: installed"
