#!/usr/bin/env bash
# kuryr-entrypoint: the entrypoint of the kuryr-ts container image and of the managed plugin.
#
# Like the original image's run_kuryr.sh, it turns the environment into a kuryr.conf when none is there, then
# execs `kuryr "$@"` (the image's default command is `serve`):
#   - /etc/kuryr/kuryr.conf exists (bind-mounted): used unchanged, the variables below only add to it where
#     kuryr-ts reads them itself (CAPABILITY_SCOPE, LOG_LEVEL, KURYR_*).
#   - otherwise a file is written to $KURYR_GENERATED_CONF (default /tmp/kuryr.conf, mode 0600) with
#       [neutron] auth_type = password, auth_url = $IDENTITY_URL, username = $SERVICE_USER,
#       password = $SERVICE_PASSWORD, project_name = $SERVICE_PROJECT_NAME,
#       project_domain_name = $SERVICE_DOMAIN_NAME, user_domain_name = $USER_DOMAIN_NAME
#     (each only when set; the original swapped the two domain variables, see docs/migration.md),
#     and passed with --config. Credentials there select the Neutron backend, as in the original image
#     (KURYR_BACKEND=embedded overrides); without IDENTITY_URL or SERVICE_USER the embedded store is used.
#   - `serve` without --socket/--listen: HTTP_SOCKET (as the original image) picks the listener: a path is a
#     unix socket, `[HOST]:PORT` a TCP listener (host defaults to 127.0.0.1, not all interfaces).
set -euo pipefail

[ $# -gt 0 ] || set -- serve
conf=/etc/kuryr/kuryr.conf
extra=()
if [ ! -e "$conf" ]; then
  conf=${KURYR_GENERATED_CONF:-/tmp/kuryr.conf}
  umask 077
  {
    echo '# written by kuryr-entrypoint from the environment'
    echo '[neutron]'
    if [ -n "${IDENTITY_URL:-}${SERVICE_USER:-}" ]; then echo 'auth_type = password'; fi
    [ -z "${IDENTITY_URL:-}" ] || echo "auth_url = $IDENTITY_URL"
    [ -z "${SERVICE_USER:-}" ] || echo "username = $SERVICE_USER"
    [ -z "${SERVICE_PASSWORD:-}" ] || echo "password = $SERVICE_PASSWORD"
    [ -z "${SERVICE_PROJECT_NAME:-}" ] || echo "project_name = $SERVICE_PROJECT_NAME"
    [ -z "${SERVICE_DOMAIN_NAME:-}" ] || echo "project_domain_name = $SERVICE_DOMAIN_NAME"
    [ -z "${USER_DOMAIN_NAME:-}" ] || echo "user_domain_name = $USER_DOMAIN_NAME"
  } >"$conf"
  extra=(--config "$conf")
fi

if [ "$1" = serve ] && [ -n "${HTTP_SOCKET:-}" ]; then
  explicit=0
  for a in "$@"; do case $a in --socket | --socket=* | --listen | --listen=*) explicit=1 ;; esac; done
  if [ $explicit = 0 ]; then
    case $HTTP_SOCKET in
      /*) extra+=(--socket "$HTTP_SOCKET") ;;
      :*) extra+=(--listen "127.0.0.1$HTTP_SOCKET") ;;
      *) extra+=(--listen "$HTTP_SOCKET") ;;
    esac
  fi
fi

case $1 in
  --version | version | help | --help | -h) exec kuryr "$@" ;;
  *) exec kuryr "$@" "${extra[@]}" ;;
esac
