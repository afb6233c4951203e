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
# Amazon Linux runs nginx's workers as "nginx"; Debian and Ubuntu as "www-data".
if ! id -u nginx >/dev/null 2>&1 && id -u www-data >/dev/null 2>&1; then
  sed -i 's/^user nginx;/user www-data;/' "$root/etc/nginx/nginx.conf"
fi
install -m 0644 "$here/amazon-cloudwatch-agent.json" "$root/opt/aws/amazon-cloudwatch-agent/etc/sre-workshop.json"
