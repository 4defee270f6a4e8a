#!/usr/bin/env bash
# Adds a SIP user to the reference configuration's db_text subscriber table
# (AUTH_DB_URL="text://DIR", docs/pcscf-plugin.md). The password is read
# from standard input (never from the command line, where ps shows it) and
# stored only as HA1 = MD5(user ":" domain ":" password), the value digest
# authentication needs. DIR is made from the template beside this script
# when it does not exist. Kamailio reads the table at start: restart it (or
# use an SQL database) to add users to a running one.
#
#   printf '%s' "$PASSWORD" | add-subscriber.sh DIR USER DOMAIN
set -euo pipefail
if (($# != 3)); then
  echo "usage: printf '%s' PASSWORD | $0 DIR USER DOMAIN" >&2
  exit 2
fi
dir=$1 user=$2 domain=$3
here=$(cd "$(dirname "$0")" && pwd)
for v in "$user" "$domain"; do
  [[ "$v" =~ ^[A-Za-z0-9._+-]+$ ]] || { echo "add-subscriber: '$v': use [A-Za-z0-9._+-]" >&2; exit 2; }
done
IFS= read -r password || [[ -n "$password" ]] || { echo "add-subscriber: no password on stdin" >&2; exit 2; }
[[ -n "$password" ]] || { echo "add-subscriber: empty password" >&2; exit 2; }
if [[ ! -d "$dir" ]]; then
  (umask 077 && mkdir -p "$dir")
  cp "$here/dbtext/version" "$here/dbtext/subscriber" "$dir/"
  chmod 600 "$dir/subscriber"
fi
if grep -q "^[0-9]*:$user:$domain:" "$dir/subscriber"; then
  echo "add-subscriber: $user@$domain is already in $dir/subscriber" >&2
  exit 1
fi
md5() { printf '%s' "$1" | md5sum | cut -d' ' -f1; }
ha1=$(md5 "$user:$domain:$password")
ha1b=$(md5 "$user@$domain:$domain:$password")
id=$(($(wc -l <"$dir/subscriber")))
# The password column stays empty: only HA1 is kept.
printf '%s:%s:%s::%s:%s\n' "$id" "$user" "$domain" "$ha1" "$ha1b" >>"$dir/subscriber"
