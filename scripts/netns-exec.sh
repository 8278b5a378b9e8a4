#!/bin/sh
# go test -exec wrapper (make test): run each test binary, and the Samba and
# slapd servers it starts, in a fresh network namespace with only loopback up.
# Every package then has a private 127.0.0.1, so Samba's fixed ports 389/636
# do not collide between packages tested in parallel, and no packet can leave
# the machine. Needs root (or CAP_SYS_ADMIN).
exec unshare --net --fork sh -c 'ip link set lo up && exec "$@"' netns-exec "$@"
