# shellcheck shell=bash
# redis.sh - a lab redis-server for the suites whose gateways share state
# (the `shared` group), sourced after tests/lab/lab.sh:
#
#   lab_redis_start NS ADDR [replicaof ADDR]   a redis-server of the lab's own
#                                              (never the system's), port 6379
#   lab_redis_cli NS ADDR ARG...               redis-cli against it, as default
#   lab_redis_user_cli NS ADDR ARG...          ... as stsproxy's ACL user
#
# Besides the default user (for the suite's own looks), the server has
# stsproxy's user with only the commands, keys and channels stsproxy needs:
# the line docs/SECURITY.md recommends, LAB_REDIS_ACL, password
# LAB_REDIS_PASSWORD. A gateway missing a permission fails its checks. The
# server's files are in LAB_DIR/redis-NS; it goes with the lab.

LAB_REDIS_PASSWORD=gw-secret
LAB_REDIS_ACL="user stsproxy on >$LAB_REDIS_PASSWORD resetchannels ~stsproxy:* &stsproxy:* -@all +get +mget +scan +set +eval +publish +subscribe +ping +hset +hlen +hgetall +expire"

# lab_redis_start NS ADDR [replicaof ADDR] - start it in NS on ADDR:6379
# (as a replica of ADDR:6379) and wait until it listens.
lab_redis_start() {
	local ns=$1 addr=$2 d="$LAB_DIR/redis-$1"
	mkdir -p "$d" || return 1
	{
		echo "bind $addr"
		echo "port 6379"
		echo "protected-mode no"
		echo "save \"\""
		echo "appendonly no"
		echo "dir $d"
		echo "user default on nopass ~* &* +@all"
		echo "$LAB_REDIS_ACL"
		[ $# -lt 3 ] || echo "replicaof $4 6379"
	} >"$d/redis.conf" || return 1
	lab__start "redis-$ns" "$ns" redis-server "$d/redis.conf" || return 1
	lab__await "redis-$ns" "$ns" "$addr" 6379
}

# lab_redis_stop NS - stop the redis-server of NS (its data is gone).
lab_redis_stop() { lab__stop "redis-$1"; }

# lab_redis_cli NS ADDR ARG... - redis-cli from NS to ADDR, as the default user.
lab_redis_cli() {
	local ns=$1 addr=$2
	shift 2
	lab_exec "$ns" redis-cli -h "$addr" "$@"
}

# lab_redis_user_cli NS ADDR ARG... - the same as stsproxy's user: what it may see.
lab_redis_user_cli() {
	local ns=$1 addr=$2
	shift 2
	lab_exec "$ns" redis-cli -h "$addr" --user stsproxy --pass "$LAB_REDIS_PASSWORD" \
		--no-auth-warning "$@"
}
