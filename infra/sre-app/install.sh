#!/bin/bash
# Install sre-app from the unpacked sre-app.zip into ${ROOT:-/}: code in /opt/sre-app, settings in
# /etc/sre-workshop/sre-app.env, the systemd unit, the CloudWatch agent config.
# Needs AWS_REGION and METRICS_TABLE. The user data then makes the venv and starts the unit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${ROOT:-/}
: "${AWS_REGION:?AWS_REGION is required}" "${METRICS_TABLE:?METRICS_TABLE is required}"

install -d "$root/opt/sre-app" "$root/etc/sre-workshop" "$root/etc/systemd/system" "$root/var/log/sre-app" \
  "$root/opt/aws/amazon-cloudwatch-agent/etc"
cp -R "$here/app.py" "$here/sre_app" "$here/appkit" "$here/requirements.txt" "$root/opt/sre-app/"
install -m 0644 "$here/sre-app.service" "$root/etc/systemd/system/sre-app.service"
install -m 0644 "$here/amazon-cloudwatch-agent.json" "$root/opt/aws/amazon-cloudwatch-agent/etc/sre-workshop.json"
# The spec's environment (AWS_REGION, METRICS_TABLE) and where the logs go.
umask 077
cat > "$root/etc/sre-workshop/sre-app.env" <<ENV
AWS_REGION=${AWS_REGION}
METRICS_TABLE=${METRICS_TABLE}
PORT=8080
LOG_FILE=/var/log/sre-app/app.log
SRE_APP_RUNTIME_DIR=/run/sre-app
ENV
