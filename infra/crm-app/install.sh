#!/bin/bash
# Install crm-app from the unpacked crm-app.zip into ${ROOT:-/}: code in /opt/crm-app, settings in
# /etc/sre-workshop/crm-app.env, the systemd unit, the CloudWatch agent config.
# Needs AWS_REGION, CUSTOMERS_TABLE, DEALS_TABLE and ACTIVITIES_TABLE. PYTHON (default python3.11)
# makes the venv; activate.sh seeds the data and starts the unit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${ROOT:-/}
: "${AWS_REGION:?AWS_REGION is required}" "${CUSTOMERS_TABLE:?CUSTOMERS_TABLE is required}"
: "${DEALS_TABLE:?DEALS_TABLE is required}" "${ACTIVITIES_TABLE:?ACTIVITIES_TABLE is required}"

install -d "$root/opt/crm-app" "$root/etc/sre-workshop" "$root/etc/systemd/system" "$root/var/log/crm-app" \
  "$root/opt/aws/amazon-cloudwatch-agent/etc"
# A package dir of an older version must not keep files this one dropped.
rm -rf "$root/opt/crm-app/crm_app" "$root/opt/crm-app/appkit"
cp -R "$here/app.py" "$here/init_sample_data.py" "$here/crm_app" "$here/appkit" "$here/requirements.txt" \
  "$root/opt/crm-app/"
install -m 0644 "$here/crm-app.service" "$root/etc/systemd/system/crm-app.service"
install -m 0644 "$here/amazon-cloudwatch-agent.json" "$root/opt/aws/amazon-cloudwatch-agent/etc/sre-workshop.json"
# The spec's environment (AWS_REGION and the three table names) and where the logs go.
umask 077
# Fault-control token: random and root-only. SSM Run Command's fault scripts read the file as root; the app
# gets it through its env file. It never appears in CloudFormation, the ledger or on the network.
token_file="$root/etc/sre-workshop/fault-token"
[ -s "$token_file" ] || head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > "$token_file"
chmod 0600 "$token_file"
cat > "$root/etc/sre-workshop/crm-app.env" <<ENV
AWS_REGION=${AWS_REGION}
CUSTOMERS_TABLE=${CUSTOMERS_TABLE}
DEALS_TABLE=${DEALS_TABLE}
ACTIVITIES_TABLE=${ACTIVITIES_TABLE}
PORT=8080
LOG_FILE=/var/log/crm-app/app.log
FAULT_CONTROL_TOKEN=$(cat "$token_file")
CRM_APP_RUNTIME_DIR=/run/crm-app
ENV
# The packages: a fresh venv from the zip's wheels only, each checked against the lock's sha256, so the
# instance needs no package index (pip's own config files are ignored: the zip alone decides). Readable by
# the service user: only the env file above is private.
umask 022
"${PYTHON:-python3.11}" -m venv --clear "$root/opt/crm-app/venv"
PIP_CONFIG_FILE=/dev/null "$root/opt/crm-app/venv/bin/pip" install --quiet --disable-pip-version-check \
  --no-index --find-links "$here/wheels" --require-hashes -r "$here/requirements.txt"
