#!/bin/bash
# Install the nginx web tier from the unpacked nginx-assets.zip into ${ROOT:-/}.
# Needs PRIVATE_ALB_DNS. Run by the instance's user data; tests run it against a temporary root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${ROOT:-/}
: "${PRIVATE_ALB_DNS:?PRIVATE_ALB_DNS must name the private ALB}"

install -d "$root/etc/nginx" "$root/var/log/nginx" "$root/opt/aws/amazon-cloudwatch-agent/etc"
# The one dynamic part of nginx.conf: the private ALB's DNS name.
sed "s/PRIVATE_ALB_DNS_PLACEHOLDER/${PRIVATE_ALB_DNS}/g" "$here/nginx.conf" > "$root/etc/nginx/nginx.conf"
install -m 0644 "$here/amazon-cloudwatch-agent.json" "$root/opt/aws/amazon-cloudwatch-agent/etc/sre-workshop.json"
