#!/bin/bash
# Put this zip's crm-app into service on CRMAppInstance, as root: at first boot (the user data) and on every
# update (sre-workshop-update-assets, through SSM Run Command). install.sh writes the files and the venv;
# this seeds the sample data (idempotent), starts the unit, and fails unless the app answers its deep health
# check. Settings come from /etc/sre-workshop/instance.env, written by the user data.
set -euxo pipefail
here=$(cd "$(dirname "$0")" && pwd)
set -a
. /etc/sre-workshop/instance.env
set +a
id -u crm-app >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin crm-app
ROOT=/ PYTHON=python3.11 bash "$here/install.sh"
install -m 0755 "$here/update-assets.sh" /usr/local/sbin/sre-workshop-update-assets
chown -R crm-app: /var/log/crm-app
# crm-app.env holds FAULT_CONTROL_TOKEN: never trace while it is in scope (this script's trace goes to
# cloud-init's output and to every rollout's SSM command output).
(set +x; set -a; . /etc/sre-workshop/crm-app.env; set +a; cd /opt/crm-app && /opt/crm-app/venv/bin/python init_sample_data.py)
systemctl daemon-reload
systemctl enable crm-app
systemctl restart crm-app
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
  -c file:/opt/aws/amazon-cloudwatch-agent/etc/sre-workshop.json
for _ in $(seq 60); do curl -fsS --max-time 2 http://127.0.0.1:8080/health && break; sleep 1; done
curl -fsS --max-time 5 "http://127.0.0.1:8080/health?deep=1"
