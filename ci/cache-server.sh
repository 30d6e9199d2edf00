#!/usr/bin/env bash
# make cache-server: Debian's redis-server as the compiler cache that build hosts share
# (ccache 4.7 remote_storage): a configuration built on one host is a cache hit on the
# next. The cache lives in memory (CACHE_MEMORY, the least recently used entries go
# first) and empties when the server stops. No password: for a private build network.
#
# usage: ci/cache-server.sh [start|stop|status]
# CACHE_BIND (127.0.0.1: give an address the hosts reach), CACHE_PORT (6388),
# CACHE_MEMORY (4gb), CACHE_SERVER_DIR (where its pid and log go: $GP_WORK/cache-server).
set -euo pipefail
action=${1:-start}
bind=${CACHE_BIND:-127.0.0.1}
port=${CACHE_PORT:-6388}
memory=${CACHE_MEMORY:-4gb}
dir=${CACHE_SERVER_DIR:-${GP_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/grouped-pages}/cache-server}
pidfile="$dir/redis-$port.pid"
url="redis://$bind:$port"

running() {
	[[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

case $action in
start)
	if running; then
		echo "cache-server: already running at $url (pid $(cat "$pidfile"))"
		exit 0
	fi
	mkdir -p "$dir"
	redis-server --bind "$bind" --port "$port" --protected-mode no --daemonize yes \
		--pidfile "$pidfile" --logfile "$dir/redis-$port.log" --dir "$dir" \
		--save '' --appendonly no --maxmemory "$memory" --maxmemory-policy allkeys-lru
	for _ in $(seq 50); do
		if [[ $(redis-cli -h "$bind" -p "$port" ping 2>/dev/null) == PONG ]]; then
			echo "cache-server: $url (pid $(cat "$pidfile"), log $dir/redis-$port.log);" \
				"builds use it with CCACHE_REMOTE_STORAGE=$url," \
				"e.g. make matrix HOSTS=hosts CCACHE_REMOTE_STORAGE=$url"
			exit 0
		fi
		sleep 0.1
	done
	echo "error: redis-server did not answer at $url: see $dir/redis-$port.log" >&2
	exit 1
	;;
stop)
	if running; then
		pid=$(cat "$pidfile")
		kill "$pid"
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		echo "cache-server: stopped $url"
	else
		echo "cache-server: not running at $url"
	fi
	;;
status)
	if ! running; then
		echo "cache-server: not running at $url"
		exit 1
	fi
	keys=$(redis-cli -h "$bind" -p "$port" dbsize)
	used=$(redis-cli -h "$bind" -p "$port" info memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p')
	echo "cache-server: $url (pid $(cat "$pidfile")): $keys entries, $used"
	;;
*)
	echo "error: ci/cache-server.sh $action: valid are start, stop, status" >&2
	exit 2
	;;
esac
