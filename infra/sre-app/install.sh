#!/bin/bash
# Install sre-app from the unpacked sre-app.zip into ${ROOT:-/}: code in /opt/sre-app, settings in
# /etc/sre-workshop/sre-app.env, the systemd unit, the CloudWatch agent config.
# Needs AWS_REGION and METRICS_TABLE. PYTHON (default python3.11) makes the venv; activate.sh starts the unit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${ROOT:-/}
: "${AWS_REGION:?AWS_REGION is required}" "${METRICS_TABLE:?METRICS_TABLE is required}"

install -d "$root/opt/sre-app" "$root/etc/sre-workshop" "$root/etc/systemd/system" "$root/var/log/sre-app" \
  "$root/opt/aws/amazon-cloudwatch-agent/etc"
# A package dir of an older version must not keep files this one dropped.
rm -rf "$root/opt/sre-app/sre_app" "$root/opt/sre-app/appkit"
cp -R "$here/app.py" "$here/sre_app" "$here/appkit" "$here/requirements.txt" "$root/opt/sre-app/"
install -m 0644 "$here/sre-app.service" "$root/etc/systemd/system/sre-app.service"
install -m 0644 "$here/amazon-cloudwatch-agent.json" "$root/opt/aws/amazon-cloudwatch-agent/etc/sre-workshop.json"
# The spec's environment (AWS_REGION, METRICS_TABLE), where the logs go, and the app's deliberate leak as the
# workshop deploys it (the pre-baked memory leak: LEAK_MODE=off here and a restart turn it off).
umask 077
# Fault-control token: random and root-only. SSM Run Command's fault scripts read the file as root; the app
# gets it through its env file. It never appears in CloudFormation, the ledger or on the network.
token_file="$root/etc/sre-workshop/fault-token"
[ -s "$token_file" ] || head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > "$token_file"
chmod 0600 "$token_file"
cat > "$root/etc/sre-workshop/sre-app.env" <<ENV
AWS_REGION=${AWS_REGION}
METRICS_TABLE=${METRICS_TABLE}
PORT=8080
LOG_FILE=/var/log/sre-app/app.log
SRE_APP_RUNTIME_DIR=/run/sre-app
LEAK_MODE=request
LEAK_KB_PER_REQUEST=16
LEAK_MB_PER_MINUTE=1
LEAK_CAP_MB=200
FAULT_CONTROL_TOKEN=$(cat "$token_file")
ENV
# The packages: a fresh venv from the zip's wheels only, each checked against the lock's sha256, so the
# instance needs no package index (pip's own config files are ignored: the zip alone decides). Readable by
# the service user: only the env file above is private.
umask 022
"${PYTHON:-python3.11}" -m venv --clear "$root/opt/sre-app/venv"
PIP_CONFIG_FILE=/dev/null "$root/opt/sre-app/venv/bin/pip" install --quiet --disable-pip-version-check \
  --no-index --find-links "$here/wheels" --require-hashes -r "$here/requirements.txt"
