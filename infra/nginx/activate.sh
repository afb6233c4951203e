#!/bin/bash
# Put this zip's nginx.conf into service on NginxInstance1, as root: at first boot (the user data) and on
# every update (sre-workshop-update-assets, through SSM Run Command). A config that fails `nginx -t` is
# never loaded; the script fails unless nginx answers /health. Settings come from
# /etc/sre-workshop/instance.env (PRIVATE_ALB_DNS), written by the user data.
set -euxo pipefail
here=$(cd "$(dirname "$0")" && pwd)
set -a
. /etc/sre-workshop/instance.env
set +a
ROOT=/ bash "$here/install.sh"
install -m 0755 "$here/update-assets.sh" /usr/local/sbin/sre-workshop-update-assets
nginx -t
systemctl enable nginx
systemctl reload-or-restart nginx
/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
  -c file:/opt/aws/amazon-cloudwatch-agent/etc/sre-workshop.json
for _ in $(seq 30); do curl -fsS --max-time 2 http://127.0.0.1/health && break; sleep 1; done
curl -fsS --max-time 5 http://127.0.0.1/health
